"""`splitverify serve` as its own process, shared by the tests that need a server process
(restarts, hostile traffic, two machines)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import http


class ServeProcess:
    """`splitverify serve` as a separate process on a fixed port (so a restart keeps the URL).
    ``dev_ptau``: one machine, one cache (the development ptau); ``env``: e.g. a cache of its own
    (another "machine")."""

    def __init__(self, db: Path, port: int, *options: str, dev_ptau: bool = True,
                 env: dict[str, str] | None = None):
        self.db, self.port, self.proc = db, port, None
        self.options = ("--insecure-dev-ptau", *options) if dev_ptau else options
        self.env = {**os.environ, **(env or {})}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: float = 120) -> "ServeProcess":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "splitverify", "serve", "--port", str(self.port),
             "--db", str(self.db), *self.options], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.proc.stdout.read().decode()}")
            try:
                http.get(f"{self.url}/docs", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError(f"serve did not start within {wait:.0f} s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.proc.stdout.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


def restart_after_forward(server: "ServeProcess", step: int, restarts: list[int]):
    """An Interposer ``after`` hook: SIGKILL ``server`` once it has answered the forward
    message of ``step``, start it again on the same database, note it in ``restarts``."""
    def hook(_n: int, request: httpx.Request) -> None:
        if request.url.path.endswith("/forward") and json.loads(request.content)["step"] == step:
            server.kill()
            server.start()
            restarts.append(step)
    return hook
