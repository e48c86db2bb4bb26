"""Solidity contracts of splitverify (installed as ``splitverify.contracts``, data only).

``SplitLedger.sol`` is the ledger contract; ``build/SplitLedger.json`` is its ABI and bytecode as
the pinned solc compiles it (``python -m splitverify.ledger compile`` rewrites it; a test checks
that it is up to date). The Python client is :mod:`splitverify.ledger`.
"""

from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parent
