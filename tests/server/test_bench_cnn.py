"""`bench --json`'s CNN constraint counts (issue 21): from the cost model, nothing proven."""

from __future__ import annotations

from splitverify.circuitgen import KINDS, generator
from splitverify.model import SplitSpec
from splitverify_server.apps.bench import cnn_constraints


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
