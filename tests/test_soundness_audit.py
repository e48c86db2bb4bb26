# SPDX-License-Identifier: GPL-3.0-or-later
"""Circuit soundness audit (issue 7): tamper every wire of an honest witness, one at a time, and
require the R1CS to reject each edit.

Covered: every template of circuits/*.circom (instantiated small in one wrapper main per file,
compiled with --O1 so the templates' own signals stay wires) and the three generated circuits of
the tiny model (--O2, as deployed). A wire whose edit leaves every constraint satisfied appears in
no constraint, or only in ones that hold for any value: an under-constrained signal, unless it is
one of the explicitly listed, legitimately free wires below. Tampering one wire alone also breaks
the equation that computed it, so this finds unconstrained wires, not wires that a coordinated
multi-wire edit could move (tests/test_circuits_soundness.py makes such edits for known cheats).

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

from splitverify import zk
from splitverify.circuits import CIRCUITS_DIR, KINDS
from splitverify.zk.curve import R
from splitverify.zk.r1cs_check import R1csSystem

from conftest import tamper_witness

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


def unexplained_free_wires(circuit: zk.CompiledCircuit, honest: list[int],
                           allowed: tuple[FreeWire, ...]) -> tuple[int, list[str]]:
    """(number of wires tampered, descriptions of accepted tampers no FreeWire explains)."""
    system = R1csSystem.read(circuit.r1cs)
    names = wire_names(circuit)
    unexplained = [f"wire {w} {names.get(w, ['?'])} = {honest[w]}"
                   for w in accepted_tampers(system, honest)
                   if not any(f.covers(names.get(w, []), honest[w]) for f in allowed)]
    return len(honest) - 1, unexplained


# --- templates, one wrapper main per file --------------------------------------------------------


@dataclass(frozen=True)
class TemplateAudit:
    file: str
    templates: tuple[str, ...]
    body: str                 # the wrapper template's body
    inputs: Callable[[], dict]
    allowed: tuple[FreeWire, ...] = ()

    def source(self) -> str:
        return (f'pragma circom 2.1.0;\ninclude "{self.file}";\n\n'
                f"template Audit() {{\n{self.body}\n}}\n\ncomponent main = Audit();\n")


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


TEMPLATE_AUDITS = (
    TemplateAudit("fixedpoint.circom", ("SignedRange", "Rescale", "ReLU", "ReluMask", "OneHot"), """
    signal input rangeIn; signal input rescaleIn; signal input reluIn; signal input reluSign;
    signal input reluOffIn; signal input maskIn; signal input maskZeroIn; signal input oneHotIn[3];
    component range = SignedRange(4); range.in <== rangeIn;
    component rescale = Rescale(4, 3); rescale.in <== rescaleIn;
    component relu = ReLU(); relu.in <== reluIn; relu.isNonNeg <== reluSign;
    component reluOff = ReLU(); reluOff.in <== reluOffIn; reluOff.isNonNeg <== 0;
    component mask = ReluMask(); mask.reluOut <== maskIn;
    component maskZero = ReluMask(); maskZero.reluOut <== maskZeroIn;
    component oneHot = OneHot(3); oneHot.in <== oneHotIn;""",
                  lambda: {"rangeIn": -5, "rescaleIn": -37, "reluIn": 6, "reluSign": 1,
                           "reluOffIn": -6, "maskIn": 6, "maskZeroIn": 0, "oneHotIn": [0, 1, 0]},
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
    signal input a[2][2]; signal input b[2][2];
    component mm = MatMul(2, 2, 2); mm.a <== a; mm.b <== b;""",
                  lambda: {"a": [[1, -2], [3, 4]], "b": [[5, 6], [-7, 8]]}),
    TemplateAudit("square_chain.circom", ("SquareChain",), """
    signal input x; signal input k;
    component chain = SquareChain(3); chain.x <== x; chain.k <== k;""",
                  lambda: {"x": 3, "k": -2}),
)


def test_every_template_is_audited():
    declared = {m.group(1) for path in CIRCUITS_DIR.glob("*.circom")
                for m in re.finditer(r"^template (\w+)\(", path.read_text(), re.MULTILINE)}
    audited = {t for audit in TEMPLATE_AUDITS for t in audit.templates}
    assert declared == audited


@pytest.fixture(scope="module")
def template_witnesses(tmp_path_factory, isolated_cache) -> dict[str, tuple[zk.CompiledCircuit,
                                                                               list[int]]]:
    out = {}
    for audit in TEMPLATE_AUDITS:
        d = tmp_path_factory.mktemp(f"audit-{audit.file.split('.')[0]}")
        main = d / "audit.circom"
        main.write_text(audit.source())
        circuit = zk.compile_circuit(main, include_dirs=(CIRCUITS_DIR,), optimize="O1")
        wtns = zk.calculate_witness(circuit, audit.inputs(), d / "honest.wtns")
        out[audit.file] = (circuit, zk.read_witness(wtns))
    return out


@pytest.mark.parametrize("audit", TEMPLATE_AUDITS, ids=lambda a: a.file)
def test_template_rejects_every_single_wire_tamper(audit, template_witnesses):
    circuit, honest = template_witnesses[audit.file]
    tampered, unexplained = unexplained_free_wires(circuit, honest, audit.allowed)
    print(f"{audit.file}: {tampered} wires tampered, {circuit.info.n_constraints} constraints")
    assert unexplained == []


# --- the generated circuits of the tiny model -------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_generated_circuit_rejects_every_single_wire_tamper(kind, tiny_circuits, tiny_witnesses):
    circuit = tiny_circuits.circuit(kind)
    honest = zk.read_witness(tiny_witnesses[kind])
    tampered, unexplained = unexplained_free_wires(circuit, honest, (ISZERO_HINT_OF_ZERO,))
    print(f"{kind}: {tampered} wires tampered, {circuit.info.n_constraints} constraints")
    assert unexplained == []


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
