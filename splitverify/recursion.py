"""Some libraries raise Python's recursion limit when imported (``py_ecc`` to 100,000, py-evm's
``eth`` to 12,288). That limit is what keeps deep recursion — a JSON body nested 100,000 deep, say
— a ``RecursionError`` rather than a C-stack overflow that kills the process (the server's case).
Every such import in splitverify goes through :func:`recursion_limit_kept`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def recursion_limit_kept() -> Iterator[None]:
    """Whatever the block does to the recursion limit is undone when it ends."""
    before = sys.getrecursionlimit()
    try:
        yield
    finally:
        sys.setrecursionlimit(before)
