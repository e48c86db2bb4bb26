"""The client's session state on disk (``SplitClient(state_dir=…)``, ``train --state DIR``), so a
client killed at any moment resumes its session where it stopped.

``<dir>/state.json`` is replaced atomically (written beside, flushed to disk, renamed) after
every change the server could see: the session's id and token, each ceremony key before it is
uploaded, and each message before it is sent (a write-ahead "outbox": after a crash the very same
bytes are re-sent, and the server answers a message it already handled with the answer it gave;
a freshly computed message would carry new salts and proofs, which the server must refuse as a
replay). ``<dir>/keys/`` holds the session's ceremony keys. The folder holds the session's
bearer token: it is made readable by its owner only (folder 0700, files 0600).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from splitverify.errors import InputError

VERSION = 1
FIELDS = ("url", "request", "session_id", "token", "server_identity", "ceremony", "keys",
          "next_step", "outbox", "detected", "party", "transcript", "ptau")


class StateFolder:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"state folder {self.folder} is a file; give a folder")
        self.file = self.folder / "state.json"
        self.keys = self.folder / "keys"
        self.identity = self.folder / "identity.key"     # the client's signing key: private

    def exists(self) -> bool:
        return self.file.is_file()

    def load(self) -> dict:
        try:
            data = json.loads(self.file.read_text())
        except FileNotFoundError as exc:
            raise InputError(f"{self.folder} holds no client session (no state.json); start "
                             "one with create_session()") from exc
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.file} is not a readable client state ({exc}); it is "
                             "written atomically, so this file was changed by something else"
                             ) from exc
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise InputError(f"{self.file} is not a version-{VERSION} splitverify client state")
        missing = [name for name in FIELDS if name not in data]
        if missing:
            raise InputError(f"{self.file} lacks {missing}: it was not written by this client")
        return data

    def save(self, data: dict) -> None:
        # the file holds the session's bearer token: readable by its owner only
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        partial = self.file.with_suffix(".json.partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)             # a partial file left by a crash keeps its mode
        with open(descriptor, "w") as out:
            json.dump({"version": VERSION, **data}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.file)
        directory = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(directory)                  # the rename itself survives a power cut
        finally:
            os.close(directory)
