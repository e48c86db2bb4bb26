"""A local anvil node (Foundry's Ethereum development node) for the ledger.

The binary ships inside the npm package ``@foundry-rs/anvil-linux-amd64`` (an optional
dependency of the pinned toolchain, so it exists on linux-amd64 only). ``AnvilNode`` starts it on
a free loopback port, waits until it answers JSON-RPC and stops it on exit::

    with AnvilNode() as node:
        print(node.url)          # http://127.0.0.1:<port>

anvil picks the port itself (``--port 0``), which avoids the race of probing a free port first;
the port is read from its "Listening on" line. Its output goes to a log file rather than a pipe,
because anvil logs every request and a pipe nobody drains would eventually block it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from ..errors import ToolchainError
from .solc import EVM_VERSION
from ..zk.toolchain import SETUP_HINT, find_toolchain

ANVIL_PACKAGE = "@foundry-rs/anvil-linux-amd64"
_LISTENING = re.compile(r"Listening on (\d+\.\d+\.\d+\.\d+):(\d+)")
_STOP_TIMEOUT_S = 10.0


def find_anvil() -> Path:
    """The anvil binary of the pinned npm package; ToolchainError says how to get it."""
    path = find_toolchain().node_modules / ANVIL_PACKAGE / "bin" / "anvil"
    if not path.is_file():
        raise ToolchainError(
            f"the anvil binary is missing ({path}): it comes with the optional npm package "
            f"{ANVIL_PACKAGE}, which installs on linux-amd64 only; {SETUP_HINT}. Elsewhere, run "
            "an Ethereum node yourself and open the ledger with its http:// URL")
    if not os.access(path, os.X_OK):
        raise ToolchainError(f"{path} is not executable: run `chmod +x {path}` or `npm ci` again")
    return path


class AnvilNode:
    """One anvil process on 127.0.0.1, running the EVM version the contracts are compiled for."""

    def __init__(self, *, binary: Path | None = None, hardfork: str = EVM_VERSION,
                 startup_timeout_s: float = 30.0):
        self.binary = binary or find_anvil()
        self.hardfork = hardfork
        self.startup_timeout_s = startup_timeout_s
        self.url: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._logdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        if self._logdir is None:
            raise ToolchainError("the anvil node has not been started")
        return Path(self._logdir.name) / "anvil.log"

    def start(self) -> str:
        """Start anvil and return its URL once it answers ``eth_chainId``."""
        if self._process is not None:
            raise ToolchainError(f"this anvil node is already running (pid {self._process.pid})")
        self._logdir = tempfile.TemporaryDirectory(prefix="sv-anvil-")
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                [str(self.binary), "--host", "127.0.0.1", "--port", "0",
                 "--hardfork", self.hardfork],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + self.startup_timeout_s
            host, port = self._wait_for_listening(deadline)
            self.url = f"http://{host}:{port}"
            self._wait_for_rpc(deadline)
        except BaseException:
            self.stop()
            raise
        return self.url

    def _log_tail(self, limit: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-limit:].strip()

    def _check_alive(self) -> None:
        if self._process is None:
            raise ToolchainError("the anvil node has not been started")
        code = self._process.poll()
        if code is not None:
            raise ToolchainError(f"anvil exited with status {code} while starting:\n"
                                 f"{self._log_tail()}")

    def _wait_for_listening(self, deadline: float) -> tuple[str, int]:
        while time.monotonic() < deadline:
            self._check_alive()
            match = _LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                return match.group(1), int(match.group(2))
            time.sleep(0.05)
        raise ToolchainError(f"anvil did not report its port within {self.startup_timeout_s:.0f} s:"
                             f"\n{self._log_tail()}")

    def _wait_for_rpc(self, deadline: float) -> None:
        request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId",
                              "params": []}).encode()
        last_error = "no answer"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                req = urllib.request.Request(self.url, data=request,
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=2) as response:
                    if "result" in json.loads(response.read()):
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last_error = str(exc)  # not up yet: try again until the deadline
            time.sleep(0.05)
        raise ToolchainError(f"anvil at {self.url} did not answer eth_chainId within "
                             f"{self.startup_timeout_s:.0f} s ({last_error})")

    def stop(self) -> None:
        """Terminate anvil (kill it if it does not exit within 10 s) and remove its log."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=_STOP_TIMEOUT_S)
        if self._logdir is not None:
            self._logdir.cleanup()
            self._logdir = None

    def __enter__(self) -> AnvilNode:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
