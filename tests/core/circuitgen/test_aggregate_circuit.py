"""SplitFed-V1's Aggregate circuit (issue 20 item 2): the average of K committed client halves.

Golden: the circuit, run on the integer reference's average (``model.average_params``), outputs
exactly the reference's statement (each half's commitment, the average's under each salt), bit
for bit, on edge values (both ends of the range, negative sums K does not divide). Soundness:
an average off by one either way, or another remainder with its field quotient, is rejected by
the constraints (witnesses computed past circom's runtime asserts, as a cheating prover would);
the per-wire sweep is in test_soundness_audit.py."""

from __future__ import annotations

import pytest
import torch

from splitverify import model, quant
from splitverify.circuitgen import AGGREGATE, SplitCircuits, generator
from splitverify.errors import InputError, WitnessError
from splitverify.zk.curve import R

from conftest import TINY_SPEC, coordinated_cheat, fails_snarkjs, names_in, \
    witness_despite_asserts
from split_cases import aggregate_case

pytestmark = pytest.mark.xdist_group("aggregate")


def test_floor_mean_rounds_down_with_a_bounded_remainder():
    stacked = torch.tensor([[5, -5, -7, 0, 2], [0, 0, 1, -1, 2], [0, 1, 0, 0, 2]])
    mean, rem = quant.floor_mean(stacked)
    assert mean.tolist() == [1, -2, -2, -1, 2]          # floor, not truncation towards zero
    assert rem.tolist() == [2, 2, 0, 2, 0]
    assert torch.equal(mean * 3 + rem, stacked.sum(0))


def test_average_params_needs_two_halves_of_the_client_shapes():
    spec = TINY_SPEC
    half = model.init_params(spec.client, 0, spec.quant)
    with pytest.raises(InputError, match="at least 2 clients"):
        model.average_params(spec, spec.client, [half])
    with pytest.raises(InputError, match="client 1's half"):
        model.average_params(spec, spec.client, [half, model.init_params(spec.server, 0,
                                                                         spec.quant)])
    with pytest.raises(InputError, match="aggregate_clients=K"):
        SplitCircuits(spec).source(AGGREGATE)


@pytest.fixture(scope="module", params=[2, 3], ids=["K2", "K3"])
def aggregate_circuits(request, isolated_cache) -> SplitCircuits:
    return SplitCircuits(TINY_SPEC, aggregate_clients=request.param)


def test_the_average_equals_the_reference(aggregate_circuits, tmp_path):
    k = aggregate_circuits.aggregate_clients
    case = aggregate_case(TINY_SPEC, k, seed=3)
    stacked = torch.stack([half[0][0].reshape(-1) for half in case.halves])
    assert int(stacked.sum(0)[2]) < 0 and int(stacked.sum(0)[2]) % k != 0   # the edge is there
    wtns = aggregate_circuits.witness(AGGREGATE, case.inputs, tmp_path / "a.wtns")
    assert aggregate_circuits.statement_of(AGGREGATE, wtns) == case.statement
    compiled = aggregate_circuits.circuit(AGGREGATE).info.n_constraints
    assert sum(generator.aggregate_cost(TINY_SPEC, k).values()) == compiled


def _cheat(circuits: SplitCircuits, case, edit) -> tuple[list[int], list[set[str]]]:
    """The witness of ``case`` with entry 2 of w0's average replaced by ``edit(avg, sum, K)``
    (a field element), every value downstream recomputed; returns it and the names in each
    constraint it still violates."""
    c = circuits.circuit(AGGREGATE)
    k = circuits.aggregate_clients
    inputs = case.inputs
    avg = [row[:] for row in inputs["avg_w0"]]
    cols = len(avg[0])
    total = sum(int(half[0][0].reshape(-1)[2]) for half in case.halves)
    avg[2 // cols][2 % cols] = edit(int(model.average_params(TINY_SPEC, TINY_SPEC.client,
                                                             case.halves)[0][0].reshape(-1)[2]),
                                    total, k) % R
    inputs["avg_w0"] = avg
    with pytest.raises(WitnessError):
        circuits.witness(AGGREGATE, inputs, "/dev/null")
    values, violated = coordinated_cheat(c, witness_despite_asserts(c, inputs))
    return values, [names_in(c, i) for i in violated]


@pytest.mark.parametrize("edit, caught_by", [
    (lambda avg, total, k: avg + 1, "avg_w0Rem[2]"),          # remainder rem − K < 0
    (lambda avg, total, k: avg - 1, "avg_w0RemTop[2]"),       # remainder rem + K ≥ K
    # another remainder in [0, K): its quotient (Σ − rem') / K is no small integer in the field
    (lambda avg, total, k: (total - (total - k * avg + 1) % k) * pow(k, -1, R),
     "avg_w0Range[2]"),
], ids=["plus-one", "minus-one", "other-remainder"])
def test_a_wrong_average_is_rejected_by_its_range_checks(aggregate_circuits, edit, caught_by,
                                                         tmp_path):
    case = aggregate_case(TINY_SPEC, aggregate_circuits.aggregate_clients, seed=3)
    values, violated = _cheat(aggregate_circuits, case, edit)
    # rounds of the average's commitments, which hash the cheated entry, stay violated too
    # (coordinated_cheat cannot solve O2-substituted rounds one wire at a time): set aside
    checks = [names for names in violated if not any("Chain" in n for n in names)]
    # circom --O2 substitutes a decomposition's linear sum into its bits (with K = 2 the one
    # remainder bit is the remainder itself): the check is named by its wires or the entry's
    assert any(any(n.startswith(caught_by) or n == "avg_w0[0][2]" for n in names)
               for names in checks), checks
    assert fails_snarkjs(aggregate_circuits.circuit(AGGREGATE), values, tmp_path / "t.wtns")
