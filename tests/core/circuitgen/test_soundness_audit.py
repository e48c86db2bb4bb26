# SPDX-License-Identifier: GPL-3.0-or-later
"""Circuit soundness audit (issue 7): tamper every wire of an honest witness, one at a time, and
require the R1CS to reject each edit.

Covered: every template of circuits/*.circom (instantiated small, side by side in one wrapper main,
compiled with --O1 so the templates' own signals stay wires) and the three generated circuits of
the tiny model and of a 2+2-layer model (--O2, as deployed). A wire whose edit leaves every constraint satisfied appears in
no constraint, or only in ones that hold for any value: an under-constrained signal, unless it is
one of the explicitly listed, legitimately free wires below. Tampering one wire alone also breaks
the equation that computed it, so this finds unconstrained wires, not wires that a coordinated
multi-wire edit could move (tests/core/circuitgen/test_circuits_soundness.py makes such edits for known cheats).

Thousands of checks would take an hour as `snarkjs wtns check` processes, so the sweep uses the
in-Python checker splitverify.zk.r1cs_check, itself checked against snarkjs below.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from splitverify import zk
from splitverify.circuitgen import AGGREGATE, CIRCUITS_DIR, KINDS, SplitCircuits
from splitverify.model import Conv2d, Dense, SplitSpec
from splitverify.zk.curve import R
from splitverify.zk.r1cs_check import R1csSystem

from conftest import TINY_SPEC, tamper_witness
from split_cases import aggregate_case, random_case, table_case

pytestmark = pytest.mark.xdist_group("soundaudit")

# Two edits per wire: +1 (a bit flips 0→1 or 1→2) and a large random offset (no small-value
# coincidence, e.g. a product with a zero factor, can hide it). Fixed seed: reproducible.
LARGE_OFFSET = random.Random(7).randrange(2**64, R)
OFFSETS = (1, LARGE_OFFSET)


# --- legitimately free wires -------------------------------------------------------------------


@dataclass(frozen=True)
class FreeWire:
    """A wire allowed to take any value in the honest witness, and why."""
    pattern: str                      # regex on a .sym name of the wire
    honest_value: Callable[[int], bool]  # the condition on its honest value that makes it free
    reason: str

    def covers(self, names: list[str], value: int) -> bool:
        return self.honest_value(value) and any(re.fullmatch(self.pattern, n) for n in names)


# circomlib's IsZero computes inv = 1/in as a hint and constrains out = 1 − in·inv, in·out = 0.
# With in = 0 the first reads out = 1 whatever inv is: out is still forced (1), only the unused
# hint is free. The hint is 0 exactly when in = 0, so "honest value 0" identifies these wires.
ISZERO_HINT_OF_ZERO = FreeWire(r"main\.(\w+\[\d+\]\.|\w+\.)zero\.inv", lambda v: v == 0,
                               "IsZero's inverse hint when its input is 0: out = 1 is forced "
                               "either way (ReluMask of a zero ReLU output)")
# ReLU() alone is out = in·isNonNeg; it relies on the caller to bind `in` (and the sign) by the
# decomposition that produced them. With isNonNeg = 0, `in` is free *inside ReLU*; in the
# generated circuits every ReLU input comes from a Rescale, and the sweep of ClientForward below
# shows those wires are all rejected.
RELU_INPUT_WHEN_OFF = FreeWire(r"main\.reluOffIn|main\.reluOff\.in", lambda v: True,
                               "ReLU input with isNonNeg = 0, standalone: the caller's "
                               "decomposition binds it (see the ClientForward sweep)")


# --- the sweep ---------------------------------------------------------------------------------


def wire_names(circuit: zk.CompiledCircuit) -> dict[int, list[str]]:
    """Every .sym name of each kept wire (a wire shared by several signals has several)."""
    names: dict[int, list[str]] = {}
    for line in circuit.sym.read_text().splitlines():
        _label, wire, _component, name = line.split(",", 3)
        if int(wire) >= 0:
            names.setdefault(int(wire), []).append(name)
    return names


def accepted_tampers(system: R1csSystem, honest: list[int]) -> list[int]:
    """The wires (all but the constant-one wire 0) for which some edit in OFFSETS leaves every
    constraint satisfied."""
    assert system.unsatisfied(honest) == [], "the honest witness must satisfy the R1CS"
    return [wire for wire in range(1, len(honest))
            if not all(system.rejects_tamper(honest, wire, honest[wire] + d) for d in OFFSETS)]


@dataclass(frozen=True)
class SweepResult:
    tampered: int              # wires tampered (all but the constant-one wire)
    unexplained: list[str]     # accepted tampers that no FreeWire explains: findings
    used: set[FreeWire]        # the exceptions that did explain some accepted tamper


def sweep(circuit: zk.CompiledCircuit, honest: list[int], allowed: tuple[FreeWire, ...]
          ) -> SweepResult:
    system = R1csSystem.read(circuit.r1cs)
    names = wire_names(circuit)
    unexplained, used = [], set()
    for wire in accepted_tampers(system, honest):
        why = [f for f in allowed if f.covers(names.get(wire, []), honest[wire])]
        used.update(why)
        if not why:
            unexplained.append(f"wire {wire} {names.get(wire, ['?'])} = {honest[wire]}")
    return SweepResult(len(honest) - 1, unexplained, used)


# --- templates, all in one wrapper main (one compile) ----------------------------------------------


@dataclass(frozen=True)
class TemplateAudit:
    file: str
    templates: tuple[str, ...]
    body: str                 # this file's part of the wrapper template's body
    inputs: Callable[[], dict]
    allowed: tuple[FreeWire, ...] = ()


def audit_source(audits: tuple[TemplateAudit, ...]) -> str:
    includes = "".join(f'include "{a.file}";\n' for a in audits)
    body = "\n".join(a.body for a in audits)
    return (f"pragma circom 2.1.0;\n{includes}\ntemplate Audit() {{{body}\n}}\n\n"
            "component main = Audit();\n")


def matmul(a: list[list[int]], b: list[list[int]]) -> list[list[int]]:
    return [[sum(x * y for x, y in zip(row, col)) for col in zip(*b)] for row in a]


def transpose(m: list[list[int]]) -> list[list[int]]:
    return [list(col) for col in zip(*m)]


RHO = 0x1234_5678_9ABC_DEF1  # any challenge: the checks must hold for the honest claim
X = [[1, -2, 3], [4, 0, -6]]
W = [[2, 5, -1], [1, -3, 4]]   # nOut × nIn


def dense_inputs() -> dict:
    xw = matmul(X, transpose(W))
    bias = [7, -9]
    return {
        "naiveX": X, "naiveW": W,
        "powersSeed": RHO,
        "checkA": X, "checkB": transpose(W), "checkC": xw, "checkR": [1, RHO],
        "denseX": X, "denseW": W, "denseBias": bias, "denseR": [1, RHO],
        "denseAcc": [[v + 4 * bias[j] for j, v in enumerate(row)] for row in xw],
        "optX": X, "optW": W, "optAcc": xw, "optCommitments": [11, 22, 33],
    }


def conv_inputs() -> dict:
    """ConvNaive and ConvOptimized at CONV_AUDIT_LAYER, batch 1, bias scale 4: padding taps
    and a stride."""
    x = torch.tensor([[3, -1, 4, 1, -5, 9, 2, -6, 5]])
    w = torch.tensor([[2, -7, 1, 8], [-2, 8, 1, -8]])
    bias = torch.tensor([3, -4])
    acc = CONV_AUDIT_LAYER.nchw(CONV_AUDIT_LAYER.patches(x) @ w.T + 4 * bias)
    return {"convX": x.tolist(), "convW": w.tolist(), "convBias": bias.tolist(),
            "convAcc": acc.tolist(), "convCommitments": [44, 55, 66]}


CONV_AUDIT_LAYER = Conv2d(1, 2, 2, 2, 1, 3, 3, False)


TEMPLATE_AUDITS = (
    TemplateAudit("fixedpoint.circom", ("SignedRange", "Rescale", "ReLU", "ReluMask", "OneHot"), """
    signal input rangeIn; signal input rescaleIn; signal input reluIn; signal input reluSign;
    signal input reluOffIn; signal input reluOffSign;
    signal input maskIn; signal input maskZeroIn; signal input oneHotIn[3];
    component range = SignedRange(4); range.in <== rangeIn;
    component rescale = Rescale(4, 3); rescale.in <== rescaleIn;
    component relu = ReLU(); relu.in <== reluIn; relu.isNonNeg <== reluSign;
    component reluOff = ReLU(); reluOff.in <== reluOffIn; reluOff.isNonNeg <== reluOffSign;
    component mask = ReluMask(); mask.reluOut <== maskIn;
    component maskZero = ReluMask(); maskZero.reluOut <== maskZeroIn;
    component oneHot = OneHot(3); oneHot.in <== oneHotIn;""",
                  lambda: {"rangeIn": -5, "rescaleIn": -37, "reluIn": 6, "reluSign": 1,
                           "reluOffIn": -6, "reluOffSign": 0,
                           "maskIn": 6, "maskZeroIn": 0, "oneHotIn": [0, 1, 0]},
                  (ISZERO_HINT_OF_ZERO, RELU_INPUT_WHEN_OFF)),
    TemplateAudit("dense.circom", ("DenseNaive", "ChallengePowers", "MatMulCheck", "DenseCheck",
                                   "DenseOptimized"), """
    signal input naiveX[2][3]; signal input naiveW[2][3];
    component naive = DenseNaive(2, 3, 2); naive.x <== naiveX; naive.w <== naiveW;
    signal input powersSeed;
    component powers = ChallengePowers(3); powers.seed <== powersSeed;
    signal input checkA[2][3]; signal input checkB[3][2]; signal input checkC[2][2];
    signal input checkR[2];
    component check = MatMulCheck(2, 3, 2);
    check.a <== checkA; check.b <== checkB; check.c <== checkC; check.r <== checkR;
    signal input denseX[2][3]; signal input denseW[2][3]; signal input denseBias[2];
    signal input denseAcc[2][2]; signal input denseR[2];
    component dense = DenseCheck(2, 3, 2, 4);
    dense.x <== denseX; dense.w <== denseW; dense.bias <== denseBias; dense.acc <== denseAcc;
    dense.r <== denseR;
    signal input optX[2][3]; signal input optW[2][3]; signal input optAcc[2][2];
    signal input optCommitments[3];
    component opt = DenseOptimized(2, 3, 2);
    opt.x <== optX; opt.w <== optW; opt.acc <== optAcc; opt.commitments <== optCommitments;""",
                  dense_inputs),
    TemplateAudit("conv.circom", ("ConvNaive", "ConvOptimized"), """
    signal input convX[1][9]; signal input convW[2][4]; signal input convBias[2];
    signal input convAcc[1][8]; signal input convCommitments[3];
    component convNaive = ConvNaive(1, 1, 2, 3, 3, 2, 2, 1, 4);
    convNaive.x <== convX; convNaive.w <== convW; convNaive.bias <== convBias;
    component convOpt = ConvOptimized(1, 1, 2, 3, 3, 2, 2, 1, 4);
    convOpt.x <== convX; convOpt.w <== convW; convOpt.bias <== convBias;
    convOpt.acc <== convAcc; convOpt.commitments <== convCommitments;""", conv_inputs),
    TemplateAudit("commit.circom", ("Pack", "PoseidonChain"), """
    signal input packIn[5]; signal input chainIn[14];
    component pack = Pack(5, 100, 128); pack.in <== packIn;
    component chain = PoseidonChain(14); chain.in <== chainIn;""",
                  lambda: {"packIn": [-128, 0, 5, 127, -1], "chainIn": list(range(3, 17))}),
    TemplateAudit("loss.circom", ("MseOneHot",), """
    signal input logits[2][2]; signal input onehot[2][2];
    component mse = MseOneHot(2, 2, 8, 4); mse.logits <== logits; mse.onehot <== onehot;""",
                  lambda: {"logits": [[-200, 37], [255, 0]], "onehot": [[0, 1], [1, 0]]}),
    TemplateAudit("update.circom", ("SgdStep",), """
    signal input grads[2];
    component down = SgdStep(4, 3, 5); down.grad <== grads[0];
    component up = SgdStep(4, 3, 5); up.grad <== grads[1];""",
                  lambda: {"grads": [-13, 22]}),
    TemplateAudit("matmul.circom", ("MatMul",), """
    signal input mmA[2][2]; signal input mmB[2][2];
    component mm = MatMul(2, 2, 2); mm.a <== mmA; mm.b <== mmB;""",
                  lambda: {"mmA": [[1, -2], [3, 4]], "mmB": [[5, 6], [-7, 8]]}),
    TemplateAudit("labels.circom", ("MerkleRoot",), """
    signal input merkleLeaf; signal input merkleIndex; signal input merkleSiblings[2];
    component merkle = MerkleRoot(2); merkle.leaf <== merkleLeaf;
    merkle.index <== merkleIndex; merkle.siblings <== merkleSiblings;""",
                  lambda: {"merkleLeaf": 3, "merkleIndex": 2, "merkleSiblings": [11, 12]}),
    TemplateAudit("square_chain.circom", ("SquareChain",), """
    signal input squareX; signal input squareK;
    component squares = SquareChain(3); squares.x <== squareX; squares.k <== squareK;""",
                  lambda: {"squareX": 3, "squareK": -2}),
)


def test_every_template_is_audited():
    declared = {m.group(1) for path in CIRCUITS_DIR.glob("*.circom")
                for m in re.finditer(r"^template (\w+)\(", path.read_text(), re.MULTILINE)}
    audited = {t for audit in TEMPLATE_AUDITS for t in audit.templates}
    assert declared == audited


@pytest.fixture(scope="module")
def templates_witness(tmp_path_factory, isolated_cache) -> tuple[zk.CompiledCircuit, list[int]]:
    """All templates side by side in one main (one compile and one witness instead of seven),
    each fed by main inputs of its own; --O1 keeps the templates' own signals as wires."""
    d = tmp_path_factory.mktemp("audit-templates")
    main = d / "audit.circom"
    main.write_text(audit_source(TEMPLATE_AUDITS))
    circuit = zk.compile_circuit(main, include_dirs=(CIRCUITS_DIR,), optimize="O1")
    inputs = {name: value for audit in TEMPLATE_AUDITS for name, value in audit.inputs().items()}
    return circuit, zk.read_witness(zk.calculate_witness(circuit, inputs, d / "honest.wtns"))


def test_templates_reject_every_single_wire_tamper(templates_witness):
    circuit, honest = templates_witness
    allowed = tuple(f for audit in TEMPLATE_AUDITS for f in audit.allowed)
    result = sweep(circuit, honest, allowed)
    print(f"templates: {result.tampered} wires tampered, {circuit.info.n_constraints} constraints")
    assert result.unexplained == []
    assert result.used == set(allowed), "an exception that explains nothing must go"


# --- the generated circuits of the tiny model -------------------------------------------------


def assert_every_single_wire_tamper_rejected(circuit: zk.CompiledCircuit, wtns: Path,
                                             label: str) -> None:
    honest = zk.read_witness(wtns)
    result = sweep(circuit, honest, (ISZERO_HINT_OF_ZERO,))
    print(f"{label}: {result.tampered} wires tampered, {circuit.info.n_constraints} "
          f"constraints, {len(result.used)} exception kinds used")
    assert result.tampered == circuit.info.n_wires - 1
    assert result.unexplained == []


@pytest.mark.parametrize("kind", KINDS)
def test_generated_circuit_rejects_every_single_wire_tamper(kind, tiny_circuits, tiny_witnesses):
    assert_every_single_wire_tamper_rejected(tiny_circuits.circuit(kind), tiny_witnesses[kind],
                                             kind)


# Two layers on each side (ReLU between and at the cut): the generated code's per-layer loops,
# the backward pass through a hidden ReLU and the client's input gradient between its layers.
DEEPER_SPEC = SplitSpec((Dense(4, 3, True), Dense(3, 3, True)),
                        (Dense(3, 3, True), Dense(3, 2, False)), batch=2)


@pytest.fixture(scope="module")
def deeper_witnesses(isolated_cache, tmp_path_factory) -> tuple[SplitCircuits, dict[str, Path]]:
    circuits = SplitCircuits(DEEPER_SPEC)
    case = random_case(DEEPER_SPEC, seed=11)
    d = tmp_path_factory.mktemp("deeper-wtns")
    return circuits, {kind: circuits.witness(kind, case.inputs[kind], d / f"{kind}.wtns")
                      for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_a_deeper_model_rejects_every_single_wire_tamper(kind, deeper_witnesses):
    circuits, witnesses = deeper_witnesses
    assert_every_single_wire_tamper_rejected(circuits.circuit(kind), witnesses[kind],
                                             f"2+2 layers, {kind}")


@pytest.mark.parametrize("kind", KINDS)
def test_a_convolutional_model_rejects_every_single_wire_tamper(kind, tiny_conv_circuits,
                                                                tiny_conv_witnesses):
    """TINY_CONV_SPEC: im2col wiring with padding and a stride, the convolution's forward,
    weight-gradient and input-gradient checks, its bias update over positions."""
    assert_every_single_wire_tamper_rejected(tiny_conv_circuits.circuit(kind),
                                             tiny_conv_witnesses[kind], f"conv, {kind}")


@pytest.mark.parametrize("kind", KINDS)
def test_a_pooling_model_rejects_every_single_wire_tamper(kind, tiny_pool_circuits,
                                                         tiny_pool_witnesses):
    """TINY_POOL_SPEC: a Conv2d + ReLU, then AvgPool2d(2) at the cut (its sums, its rescale's
    bit decomposition, its input gradient into the ReLU mask)."""
    assert_every_single_wire_tamper_rejected(tiny_pool_circuits.circuit(kind),
                                             tiny_pool_witnesses[kind], f"pool, {kind}")


@pytest.mark.parametrize("kind", KINDS)
def test_label_table_circuits_reject_every_single_wire_tamper(kind, tiny_case, isolated_cache,
                                                              tmp_path):
    """--labels server: the ids (Num2Bits in the client's, MerkleRoot's in ServerStep), the
    one-hot labels as Merkle leaves, the paths' side selection, the table root and its
    commitment."""
    case = table_case(tiny_case, table_size=5, seed=3)
    circuits = SplitCircuits(tiny_case.spec, label_table_depth=case.table.depth)
    wtns = circuits.witness(kind, case.inputs[kind], tmp_path / f"{kind}.wtns")
    assert_every_single_wire_tamper_rejected(circuits.circuit(kind), wtns,
                                             f"labels from a server table, {kind}")


@pytest.mark.parametrize("clients", [2, 3])
def test_the_aggregate_circuit_rejects_every_single_wire_tamper(clients, isolated_cache,
                                                                tmp_path):
    """SplitFed-V1's average (generated, no template of its own): each client's half and its
    range checks and commitment, the average's range check, the remainder's two bounded
    decompositions (rem and K − 1 − rem; K = 3 is no power of two) and the average's
    commitment under each client's salt."""
    circuits = SplitCircuits(TINY_SPEC, aggregate_clients=clients)
    case = aggregate_case(TINY_SPEC, clients, seed=3)
    wtns = circuits.witness(AGGREGATE, case.inputs, tmp_path / "aggregate.wtns")
    assert_every_single_wire_tamper_rejected(circuits.circuit(AGGREGATE), wtns,
                                             f"aggregate of {clients} halves")
    assert main_inputs_without_wire(circuits.circuit(AGGREGATE)) == []


def main_inputs_without_wire(circuit: zk.CompiledCircuit) -> list[str]:
    """Main's inputs that the optimiser removed from the witness (wire −1 in the .sym map): the
    wire sweep cannot tamper them, so each must be accounted for. (Main's intermediate signals
    substituted by linear expressions vanish too; they are not inputs a prover picks.)"""
    removed = []
    for line in circuit.sym.read_text().splitlines():
        _label, wire, _component, name = line.split(",", 3)
        match = re.fullmatch(r"main\.(\w+)(\[\d+\])*", name)
        if int(wire) < 0 and match and match.group(1) in circuit.input_shapes:
            removed.append(name[len("main."):])
    return removed


@pytest.mark.parametrize("kind", KINDS)
def test_generated_circuit_drops_only_the_implied_label(kind, tiny_circuits):
    """--O2 substitutes the last entry of each one-hot label row by 1 − (the others), from
    OneHot's linear `total === 1`; the booleanity constraint survives on the substituted form,
    so the entry is determined, not free. No other main signal may vanish."""
    spec = tiny_circuits.spec
    implied = [f"labels[{b}][{spec.classes - 1}]" for b in range(spec.batch)]
    assert main_inputs_without_wire(tiny_circuits.circuit(kind)) == implied


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fixture", ["tiny_conv_circuits", "tiny_pool_circuits"])
def test_conv_and_pool_circuits_drop_only_the_implied_label(kind, fixture, request):
    circuits = request.getfixturevalue(fixture)
    spec = circuits.spec
    implied = [f"labels[{b}][{spec.classes - 1}]" for b in range(spec.batch)]
    assert main_inputs_without_wire(circuits.circuit(kind)) == implied


# --- the checker agrees with snarkjs ----------------------------------------------------------


def test_python_checker_agrees_with_snarkjs(tiny_circuits, tiny_witnesses, tmp_path: Path):
    """Honest witnesses, edits it rejects (an internal wire, a private input, a public output)
    and an edit it accepts (a free IsZero hint): the same verdict from both."""
    circuit = tiny_circuits.circuit("client_forward")
    wtns = tiny_witnesses["client_forward"]
    honest = zk.read_witness(wtns)
    system = R1csSystem.read(circuit.r1cs)
    names = wire_names(circuit)
    free_hint = next(w for w, n in names.items() if ISZERO_HINT_OF_ZERO.covers(n, honest[w]))
    first_private = 1 + circuit.info.n_public
    cases = {1: honest[1] + 1, first_private: honest[first_private] + 1,
             len(honest) - 1: honest[-1] + LARGE_OFFSET, free_hint: 12345}
    assert zk.check_witness(circuit, wtns)[0] and system.unsatisfied(honest) == []
    for wire, value in cases.items():
        snarkjs_ok, _ = tamper_witness(circuit, wtns, wire, value, tmp_path / f"{wire}.wtns")
        tampered = list(honest)
        tampered[wire] = value % R
        assert (system.unsatisfied(tampered) == []) == snarkjs_ok, (wire, names.get(wire))
        assert system.rejects_tamper(honest, wire, value) == (not snarkjs_ok)
    assert not system.rejects_tamper(honest, free_hint, 12345)
