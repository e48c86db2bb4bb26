"""The CLI end to end: zk setup → prove → verify (exit codes), the toolchain demo, and the
quick bench's JSON shape (not its timings)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from splitverify.circuitgen import circuit_path
from splitverify.cli import app

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_zk_setup_prove_verify_and_tamper(tmp_path):
    keys = tmp_path / "keys"
    code, out = invoke("zk", "setup", str(circuit_path("matmul.circom")), "--template", "MatMul",
                       "-p", "2", "-p", "2", "-p", "2", "--out", str(keys),
                       "--contributor", "client", "--contributor", "server")
    assert code == 0, out
    meta = json.loads((keys / "setup.json").read_text())
    assert [c["name"] for c in meta["contributions"]] == ["client", "server"]
    assert meta["insecure_dev_setup"] is True
    vk = json.loads((keys / "verification_key.json").read_text())
    assert vk["splitverify"]["insecure_dev_setup"] is True

    inputs = tmp_path / "in.json"
    inputs.write_text(json.dumps({"a": [[1, -2], [3, 4]], "b": [[5, 6], [-7, 8]]}))
    proof, public = tmp_path / "proof.json", tmp_path / "public.json"
    code, out = invoke("zk", "prove", str(keys), str(inputs), "--proof", str(proof),
                       "--public", str(public))
    assert code == 0, out
    # C = A·B: [[1·5 + (−2)(−7), 1·6 + (−2)·8], [3·5 + 4(−7), 3·6 + 4·8]] = [[19, −10], [−13, 50]]
    from splitverify.zk.curve import R
    assert [int(x) for x in json.loads(public.read_text())] == [19, R - 10, R - 13, 50]

    code, out = invoke("zk", "verify", str(keys / "verification_key.json"), str(public),
                       str(proof), "--verifier", "native")
    assert code == 0, out
    values = json.loads(public.read_text())
    values[0] = "20"
    public.write_text(json.dumps(values))
    code, out = invoke("zk", "verify", str(keys / "verification_key.json"), str(public),
                       str(proof), "--verifier", "native")
    assert code == 3, out
    assert "INVALID" in out


def test_zk_prove_reports_bad_inputs(tmp_path):
    keys = tmp_path / "keys"
    assert invoke("zk", "setup", str(circuit_path("matmul.circom")), "--template", "MatMul",
                  "-p", "1", "-p", "1", "-p", "1", "--out", str(keys))[0] == 0
    inputs = tmp_path / "in.json"
    inputs.write_text(json.dumps({"a": [[1]], "nope": [[2]]}))
    code, out = invoke("zk", "prove", str(keys), str(inputs))
    assert code == 1
    assert "nope" in out and "missing" in out


def test_zk_info_shows_counts():
    code, out = invoke("zk", "info", str(circuit_path("matmul.circom")), "--template", "MatMul",
                       "-p", "2", "-p", "3", "-p", "2")
    assert code == 0, out
    assert "constraints" in out and "ptau power needed" in out


def test_demo_writes_summary(tmp_path):
    code, out = invoke("zk", "demo", "--out", str(tmp_path))
    assert code == 0, out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["verified"] is True


REFNET_KINDS = ("client_forward", "server_step", "client_backward")


@pytest.mark.slow
@pytest.mark.xdist_group("refnet")  # shares the compiled RefNet circuits with the golden test
def test_quick_bench_prints_wellformed_json(tmp_path):
    # --ray none: Ray's start-up is paid in tests/core/test_pool_ray.py, not here as well
    code, out = invoke("bench", "--quick", "--json", "--ray", "none", "--plot",
                       str(tmp_path / "bench.png"), "--report", str(tmp_path / "BENCH.md"))
    assert code == 0, out
    data = json.loads(out.strip().splitlines()[-1])
    assert data["workload"] == "refnet" and data["batch"] == 16
    for field in ("constraints", "prove_s", "verify_s", "setup_s", "step_s", "peers"):
        assert field in data
    assert set(data["prove_s"]) == {"snarkjs", "native", "mcl"}
    for backend in ("snarkjs", "native", "mcl"):
        assert set(data["prove_s"][backend]) == {"square_chain_2^14", *REFNET_KINDS}
        assert all(isinstance(v, float) and v > 0 for v in data["prove_s"][backend].values())
    assert set(data["ratios"]["native_over_snarkjs_prove"]) == {"square_chain_2^14", *REFNET_KINDS}
    assert set(data["ratios"]["mcl_over_native_prove"]) == {"square_chain_2^14", *REFNET_KINDS}
    assert all(set(per_kind) == set(REFNET_KINDS) and all(v > 0 for v in per_kind.values())
               for per_kind in data["core_us_per_constraint"].values())
    assert set(data["mcl_prover"]["keys"]) == set(REFNET_KINDS)
    assert all(key["load_s"] > 0 and key["memory_mib"] > 0
               for key in data["mcl_prover"]["keys"].values())
    assert set(data["witness_s"]) == {"node", "wasm"}
    assert all(set(times) == set(REFNET_KINDS) for times in data["witness_s"].values())
    assert set(data["ratios"]["wasm_over_node_witness"]) == set(REFNET_KINDS)
    assert set(data["step_prove_s"]) == set(REFNET_KINDS)
    assert set(data["verify_s"]) == {"snarkjs", "native", "py_ecc"}
    assert all(isinstance(v, float) and v > 0 for v in data["verify_s"].values())
    assert isinstance(data["setup_s"]["dev_2^16"], float)
    assert set(data["step_s"]) == {"off", "every", "audit:0.1", "commit", "pipelined:4"}
    pipeline = data["pipeline"]                   # issue 18: verified proofs/s on prover pools
    assert set(pipeline["local"]) == {"1", "2"} and "ray" not in pipeline
    assert all(m["verified_proofs_per_s"] > 0 and m["retried"] == 0
               for m in pipeline["local"].values())
    assert data["ratios"]["pipeline_scaling_2_over_1"] > 0
    assert set(data["throughput_model"]["predictions"]) == {"8", "32", "128"}
    assert all(isinstance(v, float) and v > 0 for v in data["step_s"].values())
    assert data["ratios"]["pipelined_4_over_every_step"] > 0
    assert data["ratios"]["pipelined_4_loop_over_commit_loop"] > 0
    assert "pipelined_grid" not in data          # the full bench's (W = 1, 4, 16 × 1, 2 workers)
    loop = data["training_loop_s"]
    assert loop["commit"] > 0 and set(loop["pipelined:4"]) == {"before_lag_bound", "all_steps"}
    counts = data["constraints"]
    for kind in REFNET_KINDS:
        assert counts[kind] == sum(data["constraint_breakdown"][kind].values())
        assert data["constraint_breakdown"][kind]["other"] == 0
    assert counts["dense_naive"] == 16 * 64 * 32
    assert counts["dense_optimized"] <= 0.12 * counts["dense_naive"]
    peers = data["peers"]                 # a peer is null only with its error recorded
    assert (peers["ezkl_client_forward_prove_s"] is None) == (peers["ezkl_error"] is not None)
    dense = peers["dense_layer"]
    assert dense["circomlib_ml_naive"]["constraints"] == counts["dense_naive"]
    assert dense["splitverify_freivalds"]["constraints"] == counts["dense_optimized"]
    for circuit in ("circomlib_ml_naive", "splitverify_freivalds"):
        assert set(dense[circuit]["prove_s"]) == {"snarkjs", "native"}
        assert all(v > 0 for v in dense[circuit]["prove_s"].values())
    assert set(dense["ratios"]) == {"constraints", "native_prove",
                                    "ours_native_over_naive_snarkjs"}
    conv_peer = peers["conv_layer"]       # the reference CNN's layer, issue 21
    assert conv_peer["circomlib_ml_naive"]["constraints"] == counts["cnn_conv_naive"]
    assert conv_peer["splitverify_freivalds"]["constraints"] == counts["cnn_conv_optimized"]
    for circuit in ("circomlib_ml_naive", "splitverify_freivalds"):
        assert set(conv_peer[circuit]["prove_s"]) == {"snarkjs", "native"}
        assert all(v > 0 for v in conv_peer[circuit]["prove_s"].values())
    assert set(conv_peer["ratios"]) == set(dense["ratios"])
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "BENCH.md").read_text()
    assert "## Targets" in report and "Dense layer" in report and "Convolution layer" in report \
        and "(bench.png)" in report


def _fake_bench_result() -> dict:
    """The fields the figure reads, in run_bench's shape (made-up seconds)."""
    circuits = ("square_chain_2^14", *REFNET_KINDS)
    return {
        "machine": "test machine", "constraint_breakdown": {},
        "constraints": {"dense_naive": 32768, "dense_optimized": 3795,
                        "dense_optimized_over_naive": 0.1158},
        "prove_s": {"snarkjs": {c: 4.0 for c in circuits}, "native": {c: 1.0 for c in circuits},
                    "mcl": {c: 0.25 for c in circuits}},
        "mcl_prover": {"threads": 2, "keys": {k: {"load_s": 1.5, "memory_mib": 90.0}
                                              for k in REFNET_KINDS}},
        "core_us_per_constraint": {b: {k: 20.0 for k in REFNET_KINDS}
                                   for b in ("snarkjs", "native", "mcl")},
        "witness_s": {"node": {k: 2.0 for k in REFNET_KINDS},
                      "wasm": {k: 0.2 for k in REFNET_KINDS}},
        "ratios": {"native_over_snarkjs_prove": {**{c: 0.25 for c in circuits},
                                                 "client_backward": 0.34},
                   "mcl_over_native_prove": {c: 0.25 for c in circuits},
                   "wasm_over_node_witness": {k: 0.1 for k in REFNET_KINDS},
                   "native_over_py_ecc_verify": 0.001, "audit_0.1_over_off_step": 20.0},
        "step_s": {"off": 0.1, "every": 20.0, "audit:0.1": 2.0},
        "verify_s": {"snarkjs": 1.0, "native": 0.002, "py_ecc": 2.0},
        "setup_s": {"dev_2^16": 20.0, "dev_2^16_constraints": 65000},
        "peers": {"ezkl_client_forward_prove_s": 8.0, "ezkl_error": None,
                  "ezkl": {"ezkl_version": "0", "job": "the layer", "prove_s": 8.0}},
    }


def test_bench_plots_a_saved_result(tmp_path):
    saved = tmp_path / "bench.json"
    saved.write_text("progress lines may come first\n" + json.dumps(_fake_bench_result()))
    code, out = invoke("bench", "--from-json", str(saved), "--plot", str(tmp_path / "b.png"),
                       "--json")
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1])["machine"] == "test machine"
    assert (tmp_path / "b.png").stat().st_size > 10_000
    code, out = invoke("bench", "--from-json", str(tmp_path / "b.png"))
    message = " ".join(out.split())  # the console wraps long lines
    assert code == 1 and "is not the output of `splitverify bench --json`" in message


def test_bench_report_says_which_targets_are_met(tmp_path):
    """The Markdown report reads everything from the result: here native/snarkjs 0.34 on one
    circuit (missed), verify 2 ms (met), 1.0 / 8.0 against EZKL (missed: > 0.1), a 20 s step
    (missed against 2 s and 3 s), mcl/native 0.25 (met), no RefNet constraint counts (not
    measured), mcl 0.25 / 8.0 against EZKL (met), audit/off exactly 20 (met); a result without a
    field is refused by name."""
    saved = tmp_path / "bench.json"
    saved.write_text(json.dumps(_fake_bench_result()))
    report = tmp_path / "out" / "BENCH.md"
    report.parent.mkdir()
    code, out = invoke("bench", "--from-json", str(saved), "--plot", str(tmp_path / "b.png"),
                       "--report", str(report), "--json")
    assert code == 0, out
    text = report.read_text()
    met = {line.split("|")[1].strip(): line.split("|")[3].strip()
           for line in text.split("## Ratios")[0].splitlines() if line.startswith("| ")
           and not line.startswith("| target")}
    assert list(met.values()) == ["**missed**", "met", "**missed**", "**missed**", "**missed**",
                                  "met", "–", "–", "met", "met", "–", "–", "–", "–"]
    assert "not in this result (it predates it)" in text
    assert "The pipelined mode and the prover pools are not in this result" in text
    assert "worst: client_backward" in text and "1.00 s / 8.00 s = 0.125×" in text
    assert "![bench figure](../b.png)" in text
    assert "The dense layer peer is not in this result" in text
    assert "The convolution layer peer is not in this result" in text
    assert "| mcl / native prove: client_backward | 0.250 |" in text
    assert "| client_forward | 1.5 | 90 |" in text and "core-µs per constraint" in text
    broken = _fake_bench_result()
    del broken["verify_s"]
    saved.write_text(json.dumps(broken))
    code, out = invoke("bench", "--from-json", str(saved), "--report", str(report))
    assert code == 1 and "lacks field 'verify_s'" in " ".join(out.split())


def test_bench_report_tables_the_layer_peers(tmp_path):
    """peers.dense_layer and peers.conv_layer (made-up figures) each get their table and their
    ratios."""
    def peer(job: str, naive: str, ours: str, constraints: tuple[int, int]) -> dict:
        circuit = {"setup_s": 3.0, "prove_s": {"snarkjs": 2.0, "native": 0.5}, "verify_s": 0.002}
        return {"circomlib_ml_naive": {**circuit, "template": naive,
                                       "constraints": constraints[0]},
                "splitverify_freivalds": {**circuit, "template": ours,
                                          "constraints": constraints[1]},
                "job": job, "ratios": {"constraints": constraints[1] / constraints[0],
                                       "native_prove": 1.0,
                                       "ours_native_over_naive_snarkjs": 0.25}}
    result = _fake_bench_result()
    result["peers"]["dense_layer"] = peer("the dense job", "DenseNaive", "DenseOptimized",
                                          (32768, 3795))
    result["peers"]["conv_layer"] = peer("the conv job", "ConvNaive", "ConvOptimized",
                                         (7744, 2997))
    saved = tmp_path / "bench.json"
    saved.write_text(json.dumps(result))
    code, out = invoke("bench", "--from-json", str(saved), "--report", str(tmp_path / "B.md"))
    assert code == 0, out
    text = (tmp_path / "B.md").read_text()
    assert "Dense layer — the dense job:" in text and "Convolution layer — the conv job:" in text
    assert "| circomlib_ml_naive (`ConvNaive`) | 7,744 | 3 | 2 | 0.5 | 0.002 |" in text
    assert "| splitverify_freivalds (`ConvOptimized`) | 2,997 |" in text
    assert "| convolution layer peer: constraints | 0.3870 |" in text
    assert "| dense layer peer: constraints | 0.1158 |" in text
    assert "peer is not in this result" not in text


def test_bench_report_reads_the_pipelined_mode_and_the_pools(tmp_path):
    """Issue 18's targets and section from a result that has them (made-up figures): commit
    12 ms (met), pools 1.6× (missed: < 1.7), pipelined:4 / every 0.5 (met), the loop 2.5×
    commit (missed); the grid, the model's check and its predictions, marked as predictions."""
    result = _fake_bench_result()
    result["step_s"].update({"commit": 0.012, "pipelined:4": 10.0})
    result["ratios"].update({"pipeline_scaling_2_over_1": 1.6, "pipelined_4_over_every_step": 0.5,
                             "pipelined_4_loop_over_commit_loop": 2.5})
    result["training_loop_s"] = {"commit": 0.012,
                                 "pipelined:4": {"before_lag_bound": 0.03, "all_steps": 3.0}}
    pool = {"workers": 1, "proofs": 3, "seconds": 3.0, "verified_proofs_per_s": 1.0,
            "retried": 0}
    result["pipeline"] = {"local": {"1": pool, "2": {**pool, "workers": 2,
                                                     "verified_proofs_per_s": 1.6}},
                          "load_average": {"before": [0.5], "after": [1.9]}, "note": "n"}
    result["pipelined_grid"] = {"pipelined:16": {"2": {
        "steps": 20, "step_s": 5.0, "verified_steps_per_s": 0.2,
        "training_loop_s": {"before_lag_bound": 0.02, "all_steps": 1.0}}}}
    result["throughput_model"] = {
        "formula": "f", "step_prove_s": 3.0, "verify_s": 0.003, "cores_here": 2,
        "checked_against_measured": {"1": {"model": 1.0, "measured": 1.0,
                                           "measured_over_model": 1.0}},
        "predictions": {"8": {"verified_proofs_per_s": 8.0, "verified_steps_per_s": 2.667}},
        "predictions_note": "PREDICTIONS, not measured"}
    saved = tmp_path / "bench.json"
    saved.write_text(json.dumps(result))
    report = tmp_path / "BENCH.md"
    code, out = invoke("bench", "--from-json", str(saved), "--report", str(report),
                       "--plot", str(tmp_path / "b.png"))
    assert code == 0, out
    assert (tmp_path / "b.png").stat().st_size > 10_000      # with the throughput curve
    text = report.read_text()
    met = [line.split("|")[3].strip() for line in text.split("## Ratios")[0].splitlines()
           if line.startswith("| ") and not line.startswith("| target")]
    assert met[10:] == ["met", "**missed**", "met", "**missed**"]
    assert "30.0 ms / 12.0 ms = 2.5×" in text and "1.600×" in text
    assert "## Pipelined proofs and prover pools" in text
    assert "| local, 2 worker(s) | 3 | 1.6 | 0.533 | 0 |" in text
    assert "| `pipelined:16` | 2 | 20 | 5 | 0.2 | 0.02 | 1 |" in text
    assert "**Predictions** (PREDICTIONS, not measured)" in text and "| 8 | 8 | 2.67 |" in text


def test_zk_prove_rejects_non_object_inputs_and_missing_setup(tmp_path):
    inputs = tmp_path / "in.json"
    inputs.write_text("[1, 2]")
    code, out = invoke("zk", "prove", str(tmp_path), str(inputs))
    assert code == 1 and "setup.json" in out
    keys = tmp_path / "keys"
    assert invoke("zk", "setup", str(circuit_path("matmul.circom")), "--template", "MatMul",
                  "-p", "1", "-p", "1", "-p", "1", "--out", str(keys))[0] == 0
    code, out = invoke("zk", "prove", str(keys), str(inputs))
    assert code == 1 and "must be an object" in out


def test_circuits_command_writes_sources(tmp_path):
    code, out = invoke("circuits", "--out", str(tmp_path), "--batch", "4")
    assert code == 0, out
    assert "client_backward: " in out and "naive 8,192" in out   # 4·64·32
    for kind in ("client_forward", "server_step", "client_backward"):
        text = (tmp_path / f"{kind}.circom").read_text()
        assert "component main {public [session, step]}" in text
    assert (tmp_path / "dense.circom").is_file()


def test_split_demo_over_http_without_proofs(tmp_path):
    """The main job's plumbing on RefNet (proofs off: the baseline path, fast)."""
    code, out = invoke("demo", "--steps", "2", "--proof-mode", "off", "--out", str(tmp_path))
    assert code == 0, out
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("steps", "proof_mode", "verified", "detected", "detected_step", "detected_by",
                "reason", "final_loss", "test_accuracy", "seconds", "prove_s", "verify_s"):
        assert key in summary
    assert summary["steps"] == 2 and summary["detected"] is False
    assert (tmp_path / "transcript.json").is_file()


def test_split_demo_trains_the_reference_cnn(tmp_path):
    """--model cnn: the convolutional client half over HTTP, every statement committed and
    signed, none proven (proof mode commit: no keys, fast); `every` is run by hand (README)."""
    code, out = invoke("demo", "--model", "cnn", "--steps", "2", "--proof-mode", "commit",
                       "--out", str(tmp_path))
    assert code == 0, out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["detected"] is False
    assert "demo: cnn" in out
    code, out = invoke("demo", "--model", "vgg", "--steps", "1", "--out", str(tmp_path))
    assert code != 0 and "no reference model 'vgg'; one of refnet, cnn" in out


def test_split_demo_detects_a_replay_and_exits_3(tmp_path):
    code, out = invoke("demo", "--steps", "3", "--proof-mode", "off", "--malicious",
                       "client:replay", "--out", str(tmp_path))
    assert code == 3, out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["detected_step"], summary["detected_by"]) == (1, "server")


def test_split_demo_rejects_bad_flags(tmp_path):
    for args in (("--proof-mode", "sometimes"), ("--malicious", "client:nothing"),
                 ("--chain", "ganache"), ("--steps", "0")):
        code, out = invoke("demo", *args, "--out", str(tmp_path))
        assert code == 1, (args, out)


@pytest.mark.parametrize("args,message", [
    (("--chain", "ganache"), "use none, embedded"),
    (("--chain", "embedded", "--proof-mode", "off"), "nothing to record"),
    (("--verify-on-chain", "--proof-mode", "commit"), "needs a chain"),
    (("--chain", "embedded", "--proof-mode", "commit", "--verify-on-chain"),
     "--proof-mode every"),
    # the prover pool's flags (issue 18) are refused as early
    (("--provers", "-1"), "--provers -1"), (("--ray", " "), "--ray needs"),
])
def test_bad_chain_options_exit_1_with_a_clear_message(tmp_path, args, message):
    for command in ("demo", "train"):
        extra = ("--server", "http://127.0.0.1:9") if command == "train" else ()
        code, out = invoke(command, *extra, *args, "--out", str(tmp_path))
        assert code == 1 and message in " ".join(out.split()), (command, args, out)


def test_split_demo_logs_both_parties_statements_on_chain(tmp_path):
    """Commitments without proofs (fast): the client's and the server's statements go on the
    embedded chain; summary.json has the chain's figures."""
    code, out = invoke("demo", "--steps", "2", "--proof-mode", "commit", "--chain", "embedded",
                       "--out", str(tmp_path))
    assert code == 0, out
    chain = json.loads((tmp_path / "summary.json").read_text())["chain"]
    assert chain["backend"] == "embedded" and chain["logged_by"] == ["client", "server"]
    assert chain["entries"] == 6 and chain["verified_entries"] == 0 and chain["refused"] == []
    assert chain["parties"]["client"]["entries"] == 4 and chain["parties"]["server"]["entries"] == 2
    assert abs(chain["gas_total"] - 2 * chain["gas_per_step"]) <= 1 and chain["seconds_total"] > 0
    assert chain["deploy_gas"] > 1_000_000
    assert "6 entries" in out
    # the tables: headers, one row per proof kind, what was committed and what proven
    assert "quantity" in out and "Proofs by kind" in out and "committed" in out, out
    assert '"commit"' not in out and '{"' not in out
    assert json.loads((tmp_path / "summary.json").read_text())["proofs_by_kind"] == {
        kind: {"statements": 2, "proven": 0}
        for kind in ("client_forward", "server_step", "client_backward")}
    # each party's ledger account is its identity, the one that signs its messages
    pinned = json.loads((tmp_path / "transcript.json").read_text())["identities"]
    assert {role: chain["parties"][role]["account"] for role in pinned} == pinned


def test_compare_rejects_a_bad_chain_before_building_keys(tmp_path):
    code, out = invoke("compare", "--quick", "--chain", "ganache", "--out", str(tmp_path))
    assert code == 1 and "ganache" in out


def test_compare_rejects_an_unknown_model_before_building_keys(tmp_path):
    code, out = invoke("compare", "--quick", "--model", "lenet", "--out", str(tmp_path))
    message = " ".join(out.split())
    assert code == 1 and "no reference model 'lenet'" in message and "cnn" in message


def test_split_demo_prints_each_epoch_and_draws_the_curve(tmp_path):
    """One epoch and a step, proofs off (fast): the epoch's accuracy line, summary.json's
    curves, training.png."""
    code, out = invoke("demo", "--steps", "90", "--proof-mode", "off", "--out", str(tmp_path))
    assert code == 0, out
    assert "epoch 1 (step 89): test accuracy" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [point["step"] for point in summary["accuracy_curve"]] == [0, 89, 90]
    assert summary["accuracy_curve"][-1]["test_accuracy"] == summary["test_accuracy"] > 0.7
    assert len(summary["loss_curve"]) == 90 and summary["loss_curve"][-1] == summary["final_loss"]
    assert (tmp_path / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_help_texts_wrap_cleanly_at_80_and_120_columns():
    """rich wraps help text itself: a line break inside a paragraph would cut a sentence."""
    import typer

    for path, command in _commands(typer.main.get_command(app)):
        for text in (command.help or "", *(getattr(p, "help", None) or "" for p in command.params)):
            assert "\n" not in text.replace("\n\n", ""), (path, text)
        for width in (80, 120):
            result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": str(width)})
            assert result.exit_code == 0, (path, result.output)
            assert max(map(len, result.output.splitlines())) <= width, (path, width)


def test_split_demo_with_server_labels_trains_as_with_client_labels(tmp_path):
    """--labels server on RefNet (the server holds the digits' labels, the client sends ids;
    statements committed and signed, none proven: no keys, fast): the same proven losses as
    --labels client, step by step; the summary and its table say who held the labels; the
    transcript binds the table. A bad --labels is refused."""
    runs = {}
    for labels in ("server", "client"):
        code, out = invoke("demo", "--steps", "2", "--proof-mode", "commit", "--labels", labels,
                           "--out", str(tmp_path / labels))
        assert code == 0, out
        runs[labels] = json.loads((tmp_path / labels / "summary.json").read_text())
        transcript = json.loads((tmp_path / labels / "transcript.json").read_text())
        assert (transcript["label_table"] is not None) == (labels == "server")
    assert runs["server"]["labels"] == "server" and runs["client"]["labels"] == "client"
    assert runs["server"]["label_table"]["size"] == 1797
    assert runs["server"]["loss_curve"] == runs["client"]["loss_curve"]
    assert "sent by the client with each batch" in " ".join(out.split())
    code, out = invoke("demo", "--steps", "1", "--labels", "both", "--out", str(tmp_path / "x"))
    assert code == 1 and "--labels 'both'" in out
