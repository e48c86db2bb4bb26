"""Shared fixtures of the whole suite: the zk toolchain's small circuits and the tiny split
model (``TINY_SPEC``, ``tiny_circuits``, ``tiny_keys``) that the protocol, HTTP, session and
scenario tests run on.

* The whole session runs against a private artifact cache ($SPLITVERIFY_CACHE in a tmp dir), so
  no test reads or writes the user's cache ($SPLITVERIFY_TEST_CACHE names a folder to reuse
  across a developer's runs instead).
* ``circuits_dir`` holds two small circuits with four public outputs each: ``matmul2.circom``
  (2x2 matrix product) and ``sumprod2.circom`` (a different sum of products), so a proof of one
  can be checked against the other's key.
* The compiled circuits, their keys (dev ptau + contributions by "client" and "server"), their
  verification keys and one matmul proof per prover backend are session-scoped: every snarkjs
  call costs about a second.
* ``tamper_witness`` is the soundness harness: edit one witness entry, rewrite the .wtns, and ask
  ``check_witness`` whether the R1CS is still satisfied.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from splitverify import zk
from splitverify.circuitgen import KINDS, SplitCircuits
from splitverify.model import AvgPool2d, Conv2d, Dense, SplitSpec
from splitverify.zk.cache import ENV_CACHE
from splitverify.zk.curve import R
from splitverify.zk.wasm_witness import CIRCOM_EXCEPTIONS, CircomWitnessCalculator, _CircomAbort

from split_cases import StepCase, random_case

MATMUL2 = """pragma circom 2.0.0;
template MatMul2() { signal input a[2][2]; signal input b[2][2]; signal output c[2][2];
  signal p[2][2][2];
  for (var i=0;i<2;i++) for (var j=0;j<2;j++) { for (var k=0;k<2;k++) p[i][j][k] <== a[i][k]*b[k][j]; c[i][j] <== p[i][j][0] + p[i][j][1]; } }
component main = MatMul2();
"""

# Same inputs and number of public outputs as MatMul2, different constraints: c = q + q^T + a with
# q the element-wise product.
SUMPROD2 = """pragma circom 2.0.0;
template SumProd2() { signal input a[2][2]; signal input b[2][2]; signal output c[2][2];
  signal q[2][2];
  for (var i=0;i<2;i++) for (var j=0;j<2;j++) q[i][j] <== a[i][j]*b[i][j];
  for (var i=0;i<2;i++) for (var j=0;j<2;j++) c[i][j] <== q[i][j] + q[j][i] + a[i][j]; }
component main = SumProd2();
"""

# Raw HTTP requests in tests wait as long as the client SDK would: a step with proofs can take
# minutes on a loaded machine, far past httpx's 5 s default.
http = httpx.Client(timeout=600.0)


class Interposer(httpx.BaseTransport):
    """A real HTTP transport that calls ``before(n, request)`` and ``after(n, request)`` around
    its n-th request (from 1; the answer read in full first): crash points for the crash tests."""

    def __init__(self, before=lambda n, request: None, after=lambda n, request: None):
        self.inner, self.before, self.after, self.count = httpx.HTTPTransport(), before, after, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        self.before(self.count, request)
        response = self.inner.handle_request(request)
        response.read()
        self.after(self.count, request)
        return response

# A circuit whose witness fails on an assertion (template Three, line 6) unless a = 3.
THREE = """pragma circom 2.0.0;
template Three() {
  signal input a;
  signal input x;
  signal output b;
  a === 3;
  b <== a * x;
}
component main = Three();
"""

# Inputs with negative entries; the product has negative entries as well.
MATMUL_INPUTS = {"a": [[1, -2], [3, 4]], "b": [[5, 6], [-7, 8]]}
BACKENDS = ("snarkjs", "native", "mcl")


def matmul(a: list[list[int]], b: list[list[int]]) -> list[list[int]]:
    return [[sum(a[i][k] * b[k][j] for k in range(2)) for j in range(2)] for i in range(2)]


def to_field(x: int) -> int:
    """A signed integer as the circuit sees it: x mod r (a negative x is r - |x|)."""
    return x % R


def expected_matmul_public(inputs: dict = MATMUL_INPUTS) -> list[int]:
    return [to_field(x) for row in matmul(inputs["a"], inputs["b"]) for x in row]


def wire_of(circuit: zk.CompiledCircuit, signal: str) -> int:
    """The witness index of ``main.<signal>`` (from the .sym map: label, wire, component, name)."""
    for line in circuit.sym.read_text().splitlines():
        label, wire, _component, name = line.split(",", 3)
        if name == f"main.{signal}":
            assert int(wire) >= 0, f"{signal} was optimised away"
            return int(wire)
    raise KeyError(signal)


def step_bit_wire(circuit: zk.CompiledCircuit, quant, entry: int) -> int:
    """A wire holding one of the step bits (the bits above the remainder's frac_bits + lr_shift
    in the SgdStep decomposition) of parameter ``entry`` of layer 0 (circom keeps all but one
    bit of a decomposition)."""
    first = quant.weight_update_shift
    for bit in range(first, first + quant.step_bits + 1):
        try:
            return wire_of(circuit, f"stepW0[{entry}].bits.out[{bit}]")
        except AssertionError:
            continue
    raise AssertionError("no step bit kept as a wire")


def tamper_witness(circuit: zk.CompiledCircuit, wtns_path: str | Path, index: int,
                   new_value: int, out_path: str | Path) -> tuple[bool, str]:
    """Soundness harness: copy the witness at ``wtns_path`` to ``out_path`` with entry ``index``
    set to ``new_value`` (taken mod r), then run ``check_witness`` on the copy.

    Returns ``check_witness``'s (ok, report): a sound circuit gives ok = False whenever the edit
    changed a value that the constraints determine."""
    return tamper_witness_many(circuit, wtns_path, {index: new_value}, out_path)


def tamper_witness_many(circuit: zk.CompiledCircuit, wtns_path: str | Path,
                        edits: dict[int, int], out_path: str | Path) -> tuple[bool, str]:
    """``tamper_witness`` with several entries edited at once (a cheat that keeps every other
    relation consistent, so only the constraint under test can catch it)."""
    values = zk.read_witness(wtns_path)
    for index, new_value in edits.items():
        if not 0 <= index < len(values):
            raise IndexError(f"witness has {len(values)} entries, no index {index}")
        values[index] = new_value % R
    zk.write_witness(out_path, values)
    return zk.check_witness(circuit, out_path)


def bits_edits(circuit: zk.CompiledCircuit, prefix: str, value: int, width: int,
               only: range | None = None) -> dict[int, int]:
    """Edits that set the kept wires ``main.<prefix>[i]`` (i in ``only``, default all ``width``)
    to the binary digits of ``value`` (a decomposition rewritten for a new value; circom --O2
    keeps all but one bit as wires, the dropped one is implied by the others)."""
    edits = {}
    for i in only if only is not None else range(width):
        try:
            edits[wire_of(circuit, f"{prefix}[{i}]")] = (value >> i) & 1
        except AssertionError:  # the bit the optimiser substituted away
            continue
    return edits


def coordinated_cheat(circuit: zk.CompiledCircuit, witness: list[int],
                      edits: dict[int, int] | None = None) -> tuple[list[int], list[int]]:
    """The witness a cheating prover computes around a cheat, and the constraints it violates.

    ``edits`` (the cheat: chosen values of some wires) are applied to ``witness``; then every
    violated constraint whose C side holds exactly one wire that is neither the constant wire,
    an input nor an edited wire, and is the highest such wire of the constraint (circom numbers
    what a component computes after what it reads, so each solved wire is later than those it
    is solved from: this terminates), is solved for that wire — the wires the witness
    calculator computes downstream: challenge powers, products, most hash rounds — until
    nothing more can be solved. Returns (the witness, every constraint it violates): solving
    can leave a constraint violated, never hide one, so what remains is what no downstream
    value satisfied: the constraints that catch the cheat (and any the solving could not
    reach, which a test then sees)."""
    from splitverify.zk.r1cs_check import R1csSystem, evaluate, satisfied

    edits = edits or {}
    system = R1csSystem.read(circuit.r1cs)
    values = list(witness)
    info = system.info
    first_input = 1 + info.n_public_outputs
    after_inputs = first_input + info.n_public_inputs + info.n_private_inputs
    fixed = {0, *range(first_input, after_inputs), *edits}
    for wire, value in edits.items():
        values[wire] = value % R
    pending = sorted({*system.unsatisfied(values),
                      *(i for wire in edits for i in system.constraints_using(wire))})
    while pending:
        constraint = system.constraints[pending.pop()]
        if satisfied(constraint, values):
            continue
        a, b, c = constraint
        free = [(wire, coef) for wire, coef in c if coef % R and wire not in fixed]
        unknown = {wire for lc in constraint for wire, coef in lc if coef % R} - fixed
        if len(free) != 1 or free[0][0] != max(unknown):
            continue
        wire, coef = free[0]
        rest = (evaluate(c, values) - coef * values[wire]) % R
        values[wire] = (evaluate(a, values) * evaluate(b, values) - rest) * pow(coef, -1, R) % R
        pending.extend(i for i in system.constraints_using(wire) if i not in pending)
    return values, system.unsatisfied(values)


ASSERT_FAILED = next(code for code, what in CIRCOM_EXCEPTIONS.items() if what == "Assert Failed")


def names_in(circuit, index: int) -> set[str]:
    """The signal names of the wires constraint ``index`` mentions (the constant wire as ``1``)."""
    from splitverify.zk.r1cs_check import R1csSystem

    wires = {wire for lc in R1csSystem.read(circuit.r1cs).constraints[index]
             for wire, coef in lc if coef % R}
    names = {0: "1"}
    for line in circuit.sym.read_text().splitlines():
        _label, wire, _component, name = line.split(",", 3)
        if int(wire) in wires:
            names.setdefault(int(wire), name.removeprefix("main."))
    return {names[w] for w in wires}


def fails_snarkjs(circuit, values: list[int], path: Path) -> bool:
    zk.write_witness(path, values)
    return not zk.check_witness(circuit, path)[0]


def assert_wrong_claim_fails_only_its_freivalds_identity(
        circuit: zk.CompiledCircuit, inputs: dict, claim: str, honest_wtns: Path,
        scratch: Path) -> set[str]:
    """A claimed product ``claim`` off by one at [1][1], as a cheating prover computes around it
    (transcript, challenge, every product follow the wrong claim): exactly one constraint — a
    Freivalds identity, no range check, no hash — is violated, and snarkjs rejects the witness.
    Returns the signal names of that constraint."""
    inputs = dict(inputs)
    claimed = [row[:] for row in inputs[claim]]
    claimed[1][1] += 1
    inputs[claim] = claimed
    honest = zk.read_witness(honest_wtns)
    cheat, violated = coordinated_cheat(circuit, witness_despite_asserts(circuit, inputs))
    assert sum(a != b for a, b in zip(cheat, honest)) > 100      # the challenge moved
    [identity] = violated
    names = names_in(circuit, identity)
    assert not any("bits" in n or "Chain" in n for n in names)   # no range check, no hash
    assert fails_snarkjs(circuit, cheat, scratch)
    return names


def witness_despite_asserts(circuit: zk.CompiledCircuit, inputs: dict) -> list[int]:
    """The witness circom's calculator computes for ``inputs`` even where an ``assert`` or
    ``===`` fails (it then stops computing that component's remaining signals, which
    ``coordinated_cheat`` completes): how a cheating prover gets past the checks that circom
    runs while computing, which are not constraints."""
    from splitverify.zk.witness import field_inputs

    class Lenient(CircomWitnessCalculator):
        def _exception_handler(self, code: int) -> None:
            if code != ASSERT_FAILED:
                raise _CircomAbort(code)

    body = Lenient(circuit.wasm, circuit.name).calculate(field_inputs(circuit, inputs))
    n8 = len(body) // circuit.info.n_wires
    return [int.from_bytes(body[i:i + n8], "little") for i in range(0, len(body), n8)]


# --- session-wide isolation --------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point $SPLITVERIFY_CACHE at a fresh tmp dir for the whole session; restore it after.
    Under pytest-xdist the workers of one run share it (in the run's base temp dir): each entry
    is built once under its lock instead of once per worker (RefNet's circuits and keys: ~500 s
    of duplicated builds on two workers)."""
    if os.environ.get("SPLITVERIFY_TEST_CACHE"):
        # a developer's choice: reuse one cache across runs (CI never sets it: it starts empty)
        root = Path(os.environ["SPLITVERIFY_TEST_CACHE"])
        root.mkdir(parents=True, exist_ok=True)
    elif os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent / "splitverify-cache"
        root.mkdir(exist_ok=True)
    else:
        root = tmp_path_factory.mktemp("splitverify-cache")
    previous = os.environ.get(ENV_CACHE)
    os.environ[ENV_CACHE] = str(root)
    try:
        yield root
    finally:
        if previous is None:
            os.environ.pop(ENV_CACHE, None)
        else:
            os.environ[ENV_CACHE] = previous


@pytest.fixture(scope="session")
def circuits_dir(tmp_path_factory: pytest.TempPathFactory, isolated_cache: Path) -> Path:
    d = tmp_path_factory.mktemp("circuits")
    (d / "matmul2.circom").write_text(MATMUL2)
    (d / "sumprod2.circom").write_text(SUMPROD2)
    return d


# --- matmul2: circuit, key, vk, proofs ---------------------------------------------------------


@pytest.fixture(scope="session")
def matmul_circuit(circuits_dir: Path) -> zk.CompiledCircuit:
    return zk.compile_circuit(circuits_dir / "matmul2.circom")


def client_server_key(circuit: zk.CompiledCircuit, tmp_path_factory) -> zk.CircuitKey:
    """Dev setup plus the two phase-2 contributions the protocol will make."""
    return zk.setup(circuit, contributors=("client", "server"),
                    workdir=tmp_path_factory.mktemp(f"{circuit.name}-ceremony"))


@pytest.fixture(scope="session")
def matmul_key(matmul_circuit: zk.CompiledCircuit, tmp_path_factory) -> zk.CircuitKey:
    return client_server_key(matmul_circuit, tmp_path_factory)


@pytest.fixture(scope="session")
def matmul_vk(matmul_key: zk.CircuitKey) -> zk.VerificationKey:
    return zk.export_verification_key(matmul_key)


@pytest.fixture(scope="session")
def matmul_proofs(matmul_key: zk.CircuitKey) -> dict[str, tuple[zk.Proof, zk.PublicSignals]]:
    """One proof of MATMUL_INPUTS per prover backend."""
    return {backend: zk.prove(matmul_key, MATMUL_INPUTS, backend=backend) for backend in BACKENDS}


@pytest.fixture(scope="session")
def matmul_wtns(matmul_circuit: zk.CompiledCircuit, tmp_path_factory) -> Path:
    """A witness of MATMUL_INPUTS (valid for the circuit)."""
    out = tmp_path_factory.mktemp("matmul-wtns") / "valid.wtns"
    return zk.calculate_witness(matmul_circuit, MATMUL_INPUTS, out)


# --- sumprod2: the "other" circuit -------------------------------------------------------------


@pytest.fixture(scope="session")
def other_circuit(circuits_dir: Path) -> zk.CompiledCircuit:
    return zk.compile_circuit(circuits_dir / "sumprod2.circom")


@pytest.fixture(scope="session")
def other_key(other_circuit: zk.CompiledCircuit, tmp_path_factory) -> zk.CircuitKey:
    return client_server_key(other_circuit, tmp_path_factory)


@pytest.fixture(scope="session")
def other_vk(other_key: zk.CircuitKey) -> zk.VerificationKey:
    return zk.export_verification_key(other_key)


# --- split-learning circuits (issue 3) ---------------------------------------------------------

TINY_SPEC = SplitSpec((Dense(4, 3, True),), (Dense(3, 2, False),), batch=2)


@pytest.fixture(scope="session")
def tiny_circuits(isolated_cache: Path) -> SplitCircuits:
    """The three circuits of a 4→3+ReLU | 3→2 model at batch 2 (small, compiled once)."""
    return SplitCircuits(TINY_SPEC)


@pytest.fixture(scope="session")
def tiny_keys(tiny_circuits: SplitCircuits) -> SplitCircuits:
    """``tiny_circuits`` with its three keys made (the operator's shared keys of the HTTP tests)."""
    for kind in KINDS:
        tiny_circuits.key(kind)
    return tiny_circuits


@pytest.fixture(scope="session")
def table_keys(isolated_cache: Path) -> SplitCircuits:
    """The tiny model's circuits reading a 4-row label table (depth 2), with their keys made."""
    circuits = SplitCircuits(TINY_SPEC, label_table_depth=2)
    for kind in KINDS:
        circuits.key(kind)
    return circuits


@pytest.fixture(scope="session")
def tiny_case() -> StepCase:
    return random_case(TINY_SPEC, seed=5)


@pytest.fixture(scope="session")
def tiny_witnesses(tiny_circuits: SplitCircuits, tiny_case: StepCase,
                   tmp_path_factory) -> dict[str, Path]:
    """An honest witness of each tiny circuit for ``tiny_case``."""
    d = tmp_path_factory.mktemp("tiny-wtns")
    return {kind: tiny_circuits.witness(kind, tiny_case.inputs[kind], d / f"{kind}.wtns")
            for kind in KINDS}


# --- convolutional halves (issue 21) -----------------------------------------------------------

# client Conv2d(1→2, 3×3, padding 1) + ReLU on 4×4 | server Conv2d(2→2, 3×3, stride 2, padding
# 1) + ReLU, Linear(8→2), batch 2: padding taps, a stride, the client's forward and weight
# gradient and the server's convolution input gradient (the cut's gradient).
TINY_CONV_SPEC = SplitSpec((Conv2d(1, 2, 3, 1, 1, 4, 4, True),),
                           (Conv2d(2, 2, 3, 2, 1, 4, 4, True), Dense(8, 2, False)), batch=2)


# A pool after a convolution at the cut: the pool's forward sums and rescale, and (client
# backward) its input gradient into the convolution's ReLU.
TINY_POOL_SPEC = SplitSpec((Conv2d(1, 2, 3, 1, 1, 4, 4, True), AvgPool2d(2, 4, 4, 2, False)),
                           (Dense(8, 2, False),), batch=2)


@pytest.fixture(scope="session")
def tiny_pool_circuits(isolated_cache: Path) -> SplitCircuits:
    return SplitCircuits(TINY_POOL_SPEC)


@pytest.fixture(scope="session")
def tiny_pool_case() -> StepCase:
    return random_case(TINY_POOL_SPEC, seed=3)


@pytest.fixture(scope="session")
def tiny_pool_witnesses(tiny_pool_circuits: SplitCircuits, tiny_pool_case: StepCase,
                        tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tiny-pool-wtns")
    return {kind: tiny_pool_circuits.witness(kind, tiny_pool_case.inputs[kind],
                                             d / f"{kind}.wtns") for kind in KINDS}


@pytest.fixture(scope="session")
def tiny_conv_circuits(isolated_cache: Path) -> SplitCircuits:
    return SplitCircuits(TINY_CONV_SPEC)


@pytest.fixture(scope="session")
def tiny_conv_case() -> StepCase:
    return random_case(TINY_CONV_SPEC, seed=3)


@pytest.fixture(scope="session")
def tiny_conv_witnesses(tiny_conv_circuits: SplitCircuits, tiny_conv_case: StepCase,
                        tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tiny-conv-wtns")
    return {kind: tiny_conv_circuits.witness(kind, tiny_conv_case.inputs[kind],
                                             d / f"{kind}.wtns") for kind in KINDS}
