"""`bench --json`'s CNN constraint counts (issue 21), from the cost model, and its convolution
peer (the one entry here that proves)."""

from __future__ import annotations

from splitverify.circuitgen import KINDS, generator
from splitverify.model import SplitSpec
from splitverify_server.apps.bench import cnn_constraints, conv_layer_peer


def test_cnn_constraints_come_from_the_cost_model_and_meet_the_ratio():
    counts = cnn_constraints()
    spec = SplitSpec.refcnn()
    for kind in KINDS:
        assert counts[f"cnn_{kind}"] == sum(generator.cost_breakdown(spec, kind).values())
    assert counts["conv_optimized_over_naive"] == round(
        counts["conv_optimized"] / counts["conv_naive"], 4) <= 0.2
    # the CNN's own layer (4 kernels of 9 taps) is too narrow for the ratio: ≈ 1/4 + 1/9
    assert 0.2 < counts["cnn_conv_optimized_over_naive"] < 0.5
    # every circuit of the reference CNN fits the server's default 2^18 constraints
    assert max(counts[f"cnn_{kind}"] for kind in KINDS) < 1 << 18


def test_conv_layer_peer_proves_both_circuits_at_the_cost_models_counts(isolated_cache,
                                                                        tmp_path):
    """bench's convolution peer (peers.conv_layer), one run: ConvNaive and ConvOptimized on the
    reference CNN's layer, keyed, proven with snarkjs and native, verified; their compiled
    counts are bench's cnn_conv_naive / cnn_conv_optimized (from the cost model)."""
    peer = conv_layer_peer(1, tmp_path, lambda _msg: None)
    counts = cnn_constraints()
    assert peer["circomlib_ml_naive"]["constraints"] == counts["cnn_conv_naive"]
    assert peer["splitverify_freivalds"]["constraints"] == counts["cnn_conv_optimized"]
    for circuit in ("circomlib_ml_naive", "splitverify_freivalds"):
        assert peer[circuit]["setup_s"] > 0 and peer[circuit]["verify_s"] > 0
        assert set(peer[circuit]["prove_s"]) == {"snarkjs", "native"}
        assert all(v > 0 for v in peer[circuit]["prove_s"].values())
    assert peer["ratios"]["constraints"] == counts["cnn_conv_optimized_over_naive"]
    assert set(peer["ratios"]) == {"constraints", "native_prove", "ours_native_over_naive_snarkjs"}
