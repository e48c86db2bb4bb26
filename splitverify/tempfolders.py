"""Temporary folders that go away with what owns them.

Keys made for a session that is not persisted (an in-memory server, a client without a state
folder, a ``SplitCircuits`` made for one run) are hundreds of MB per session. They live in a
temporary folder that is removed when its owner is garbage-collected, or at the latest when the
interpreter exits (``weakref.finalize``); a process killed with SIGKILL leaves it behind.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path


def owned_temp_folder(owner: object, prefix: str) -> Path:
    """A new temporary folder removed together with ``owner``."""
    return remove_with(owner, Path(tempfile.mkdtemp(prefix=prefix)))


def remove_with(owner: object, folder: Path) -> Path:
    """``folder`` (returned) to be removed together with ``owner``."""
    # ignore_errors: the folder may already be gone (removed with its session, or by the OS)
    weakref.finalize(owner, shutil.rmtree, folder, ignore_errors=True)
    return folder
