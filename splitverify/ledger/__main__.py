"""``python -m splitverify.ledger compile|check``."""

from .contract import main

raise SystemExit(main())
