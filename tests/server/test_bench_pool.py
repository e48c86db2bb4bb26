"""`bench`'s pipeline figures (splitverify_server.apps.bench_pool) on the tiny model: verified
proofs per second on 1 and 2 local workers, and the throughput model checked against them."""

from __future__ import annotations

import pytest

from splitverify_server.apps.bench_pool import pipeline_bench, throughput_model

from conftest import TINY_SPEC
from split_cases import random_case


def test_pipeline_measures_verified_proofs_on_one_and_two_workers(tiny_keys):
    result = pipeline_bench(tiny_keys, random_case(TINY_SPEC, 11).inputs, 1, lambda _m: None,
                            ray_address=None)
    local = result["pipeline"]["local"]
    assert local["1"]["proofs"] == 3 and local["2"]["proofs"] == 6
    # every worker was given every key before the clock started, and never again
    assert local["1"]["key_loads"] == 3 and local["2"]["key_loads"] == 6
    assert result["pipeline_scaling_2_over_1"] == pytest.approx(
        local["2"]["verified_proofs_per_s"] / local["1"]["verified_proofs_per_s"], rel=1e-2)
    one = result["throughput_model"]["checked_against_measured"]["1"]
    # one worker: the wall clock is its proving plus the party's verifying and dispatch
    assert 0.3 < one["measured_over_model"] <= 1.1, one
    assert "ray" not in result["pipeline"]
    order = local["2"]["submitted_largest_first"]
    sizes = [tiny_keys.circuit(kind).info.n_constraints for kind in order]
    assert sorted(order) == sorted(local["2"]["worker_prove_s"]) and sizes == sorted(sizes)[::-1]


def test_the_model_scales_with_workers_up_to_the_cores_and_the_verifier():
    one = {"worker_prove_s": {"client_forward": 1.0, "server_step": 1.0, "client_backward": 1.0},
           "verify_s": 0.01, "verified_proofs_per_s": 0.9}
    model = throughput_model(one, {1: one, 2: {**one, "verified_proofs_per_s": 1.2}}, cores=2)
    assert model["checked_against_measured"]["1"]["model"] == 1.0
    assert model["checked_against_measured"]["2"]["measured_over_model"] == 0.6
    predictions = model["predictions"]
    assert predictions["8"]["verified_proofs_per_s"] == 8.0
    assert predictions["32"]["verified_proofs_per_s"] == 32.0
    assert predictions["128"]["verified_proofs_per_s"] == 100.0     # the verifier's 10 ms cap
    assert "PREDICTIONS" in model["predictions_note"]
