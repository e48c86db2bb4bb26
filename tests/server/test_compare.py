"""`splitverify compare` on the tiny model: the outputs are well formed, and they show the
paper's point (a ledger alone records the consistent cheats; proofs stop them)."""

from __future__ import annotations

import json

import pytest

from splitverify_server.apps.compare import (MODES, CompareConfig, run_comparison,
                                             run_named_comparison, write_outputs)
from splitverify.errors import InputError
from splitverify.protocol import scenarios

from conftest import TINY_SPEC
from split_cases import data_batches

# one mode of each kind of ledger use: none, commitments recorded, proofs verified on chain
SMALL_MODES = tuple(m for m in MODES if m.name in ("plain", "ledger only", "zk + on-chain verify"))


@pytest.fixture(scope="module")
def report(tiny_circuits):
    batches = data_batches(TINY_SPEC, 2, seed=3)
    return run_comparison(TINY_SPEC, tiny_circuits, lambda: iter(batches),
                          CompareConfig(2, 2, "auto", modes=SMALL_MODES))


@pytest.mark.slow
def test_compare_writes_wellformed_outputs(report, tmp_path):
    paths = write_outputs(report, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert [m["name"] for m in data["modes"]] == [m.name for m in SMALL_MODES]
    assert data["chain"]["backend"] in ("embedded", "anvil") and data["chain"]["why"]
    for mode in data["modes"]:
        assert mode["step_s_median"] > 0 and mode["bytes_per_step"] > 0
        assert set(mode["scenarios"]) == set(scenarios.names())
        assert mode["honest"]["detected"] is False
        assert (mode["gas_per_step"] is None) == (mode["ledger"] is None)
    plain, ledger_only, onchain = data["modes"]
    assert plain["prove_s"] == {} and ledger_only["prove_s"] == {}
    assert set(onchain["prove_s"]) == set(onchain["verify_s"]) == \
        {"client_forward", "server_step", "client_backward"}
    # a verified record runs a pairing check: it costs more gas than a plain one
    assert onchain["gas_per_step"] > ledger_only["gas_per_step"] > 0
    # what "verified on chain" meant was checked: each verifier against the transcript's keys
    assert onchain["verifiers_checked"] == sorted(onchain["prove_s"])
    assert plain["verifiers_checked"] is None and ledger_only["verifiers_checked"] is None

    md = paths["md"].read_text()
    assert md.startswith("# splitverify compare")
    for mode in SMALL_MODES:
        assert f"| {mode.name} |" in md
    detection = md.split("## Tampering")[1].split("## What this shows")[0]
    rows = [line for line in detection.splitlines() if line.startswith("|")]
    assert all(f"`{s}`" in rows[0] for s in scenarios.names())
    assert len(rows) == 2 + len(SMALL_MODES) and len({r.count("|") for r in rows}) == 1

    png = paths["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


@pytest.mark.slow
def test_the_table_shows_the_ledger_misses_what_proofs_catch(report):
    modes = {m["name"]: m for m in report["modes"]}
    for scenario in ("server:wrong-gradient", "client:poisoned-activation"):
        baseline = modes["ledger only"]["scenarios"][scenario]
        assert not baseline["detected"] and baseline["chain_entries"] == 6, baseline
        caught = modes["zk + on-chain verify"]["scenarios"][scenario]
        assert caught["detected"] and caught["step"] == 0, caught
        # the chain itself refused the cheater's proof
        assert any(r["reason"].startswith("ProofRejected") for r in caught["chain_refused"])
    assert modes["ledger only"]["scenarios"]["server:forged-proof"]["applicable"] is False
    replay = modes["ledger only"]["scenarios"]["client:replay"]
    assert (replay["step"], replay["by"]) == (1, "server")
    assert replay["chain_refused"][0]["reason"].startswith("AlreadyRecorded")


def test_bad_compare_settings_are_input_errors():
    with pytest.raises(InputError, match="--chain 'ganache'"):
        CompareConfig(2, 2, "ganache")
    with pytest.raises(InputError, match="at least one step"):
        CompareConfig(0, 2)


def test_compare_runs_the_reference_cnn_by_name(tmp_path):
    """`compare --model cnn`, quick, in its one mode without proofs or chain (no keys made):
    the CNN's honest steps and every scenario run, the outputs name the workload."""
    plain = tuple(m for m in MODES if m.name == "plain")
    report = run_named_comparison("cnn", True, tmp_path, modes=plain)
    assert report["workload"] == "cnn" and "conv1x8x8->4k3s2p1+relu" in report["spec"]
    (mode,) = report["modes"]
    assert mode["honest"]["detected"] is False and mode["step_s_median"] > 0
    assert set(mode["scenarios"]) == set(scenarios.names())
    assert "Workload: cnn (" in (tmp_path / "compare.md").read_text()
