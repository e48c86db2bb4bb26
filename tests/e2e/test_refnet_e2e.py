"""The main job end to end on RefNet: `splitverify demo` in `every` mode — the two-party key
ceremony and every proof of both sides over real HTTP (uvicorn on loopback) — then the offline
audit of its transcript, which fails on one changed proof digit or public input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from splitverify.cli import app
from splitverify.transcript import Transcript, audit

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("refnet")]


def test_refnet_every_mode_over_http_then_audit(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--steps", "2", "--proof-mode", "every", "--out",
                                 str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["verified"] is True and summary["detected"] is False
    # the client verified 2 ServerStep proofs; the server 2 ClientForward + 2 ClientBackward
    assert summary["proofs_verified"] == {"client": 2, "server": 4}
    assert set(summary["prove_s"]) == {"client_forward", "server_step", "client_backward"}
    path = tmp_path / "transcript.json"
    transcript = Transcript.load(path)
    assert {kind: [c["name"] for c in chain] for kind, chain in transcript.ceremony.items()} \
        == {kind: ["server", "client"] for kind in ("client_forward", "server_step",
                                                    "client_backward")}
    report = audit(transcript)
    assert report.valid and report.proofs_verified == 6, report
    assert runner.invoke(app, ["audit", str(path)]).exit_code == 0

    proof = transcript.entries[4].proof               # step 1's ServerStep proof
    digit = "1" if proof[100] != "1" else "2"
    changed = transcript.model_copy(deep=True)
    changed.entries[4].proof = proof[:100] + digit + proof[101:]
    changed.save(tmp_path / "digit.json")
    result = runner.invoke(app, ["audit", str(tmp_path / "digit.json")])
    assert result.exit_code == 3 and "step 1" in result.output, result.output

    changed = transcript.model_copy(deep=True)
    changed.entries[3].public["messageCommitment"] += 1   # step 1's forward statement
    changed.save(tmp_path / "public.json")
    result = runner.invoke(app, ["audit", str(tmp_path / "public.json")])
    assert result.exit_code == 3 and "step 1" in result.output, result.output
