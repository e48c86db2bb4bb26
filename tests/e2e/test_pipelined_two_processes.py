"""`pipelined:W` on the real path: the server and the client as two processes (`train`), each
with its own cache, identity and state, over HTTP — honest, against a server that cheats, and
against one that cheats and then refuses to deliver the proofs that would expose it. The two
parties agree on a two-party phase 1, as `serve` and `train` do by default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from splitverify.transcript import Transcript, audit
from splitverify_server.loopback import free_port

from conftest import http
from test_two_party_ptau import _machine

pytestmark = pytest.mark.xdist_group("sessions")

LAG, STEPS = 2, 5


@pytest.fixture(scope="module")
def machines(tiny_circuits, isolated_cache: Path, tmp_path_factory) -> tuple[Path, Path, Path]:
    """The server's folder and cache, the client's cache (and identity beside it): one pair of
    machines for the module, so the second session reuses the pair's two-party phase 1."""
    for kind in ("client_forward", "server_step", "client_backward"):
        tiny_circuits.circuit(kind)
    root = tmp_path_factory.mktemp("two-machines")
    return (root, _machine(root / "server-cache", isolated_cache),
            _machine(root / "client-cache", isolated_cache))


def _server(folder: Path, cache: Path, *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).parents[1] / "server_process.py"), str(port),
         str(folder / "server.db"), *args], env={**os.environ, "SPLITVERIFY_CACHE": str(cache)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.stdout.read().decode()}")
        try:
            http.get(f"{url}/docs", timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server did not start")


def _train(url: str, cache: Path, out: Path) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "splitverify", "train", "--server", url, "--steps", str(STEPS),
         "--proof-mode", f"pipelined:{LAG}", "--client-layers", "4:3:relu",
         "--server-layers", "3:2", "--batch", "2",
         "--identity", str(cache.parent / "client.identity"), "--state", str(out / "state"),
         "--retry-seconds", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "SPLITVERIFY_CACHE": str(cache)})
    summary_file = out / "summary.json"
    return proc, json.loads(summary_file.read_text()) if summary_file.exists() else {}


def _run(machines, out: Path, *server_args: str):
    folder, server_cache, client_cache = machines
    server, url = _server(folder, server_cache, *server_args)
    try:
        return _train(url, client_cache, out)
    finally:
        server.terminate()
        server.wait(timeout=20)
        server.stdout.close()


def test_an_honest_pipelined_session_between_two_processes_audits_like_every(
        tmp_path, machines):
    proc, summary = _run(machines, tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary["steps"] == STEPS and not summary["detected"]
    report = audit(Transcript.load(tmp_path / "out" / "transcript.json"))
    assert report.valid, report.reason
    assert report.proofs_verified == 3 * STEPS
    assert f"every statement proven ({3 * STEPS} proofs" in report.established


def test_a_cheating_server_process_that_withholds_its_proofs_is_caught_within_w_steps(
        tmp_path, machines):
    """The server sends gradients its proven step did not compute and answers every proof
    exchange with 503: it will not hand over the proofs that would expose it (a cheat that
    delivers its failing proofs is caught in tests/server/test_pipelined_http.py). The client
    trains on while no proof of the server's is due, then stops (exit 3) no later than W steps
    after the cheat, names the server, and rolls back to before it."""
    proc, summary = _run(machines, tmp_path / "out", "server:wrong-gradient", "/proofs", "503")
    said = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 3, said
    assert summary["detected"] and summary["detected_by"] == "client", summary
    cheat_step = summary["detected_step"]
    assert summary["detected_during_step"] - cheat_step <= LAG
    assert summary["rolled_back_to_step"] < cheat_step
    assert summary["rolled_back_steps"] >= 1
    assert "did not deliver" in summary["reason"], summary
