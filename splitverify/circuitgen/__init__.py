"""The split-learning circuits: the generator of the Circom sources over the templates of
``circuits/*.circom`` (found by :mod:`splitverify.resources`), assembling each layer's pieces
from its type's emitter (:mod:`.emit`), and the Python API the protocol calls.

    spec = SplitSpec.refnet()
    circuits = SplitCircuits(spec)
    fwd = model.client_forward(spec, params, x, labels)
    inputs = statements.client_forward_inputs(spec, params, x, labels, fwd, salts, session, 0)
    proof, public = circuits.prove("client_forward", inputs)
    expected = statements.client_forward_statement(spec, params, x, labels, fwd, salts, session, 0)
    assert circuits.verify("client_forward", proof, expected)

Circuits are generated from the spec, compiled once and cached by content; keys are made
once per circuit (development setup unless a ptau is given) and cached too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from .. import zk
from ..errors import InputError
from ..model import SplitSpec
from ..resources import CIRCUITS_DIR
from . import generator, statements
from .statements import PUBLIC_SIGNALS, Statement

KINDS = generator.KINDS
AGGREGATE = generator.AGGREGATE
OPTIMIZE = "O2"

__all__ = ["AGGREGATE", "CIRCUITS_DIR", "KINDS", "PUBLIC_SIGNALS", "SplitCircuits", "Statement",
           "circuit_path", "compile_template", "statements"]


def circuit_path(name: str) -> Path:
    return CIRCUITS_DIR / name


def compile_source(text: str, name: str, *, cache: zk.ArtifactCache | None = None
                   ) -> zk.CompiledCircuit:
    """Compile a generated main file that includes this folder's templates."""
    with tempfile.TemporaryDirectory(prefix="sv-gen-") as tmp:
        path = Path(tmp) / f"{name}.circom"
        path.write_text(text)
        return zk.compile_circuit(path, include_dirs=(CIRCUITS_DIR,), cache=cache, optimize=OPTIMIZE)


def compile_template(template: str, params: tuple[int, ...], *, file: str = "dense.circom",
                     cache: zk.ArtifactCache | None = None) -> zk.CompiledCircuit:
    """One template of this folder as a circuit of its own (benchmarks, tests)."""
    return zk.compile_circuit(circuit_path(file), template=template, params=params, cache=cache)


class SplitCircuits:
    """The three circuits of one :class:`SplitSpec`: compile, keys, witness, prove, verify."""

    def __init__(self, spec: SplitSpec, *, cache: zk.ArtifactCache | None = None,
                 ptau: zk.PtauFile | None = None, contributors: tuple[str, ...] = ("splitverify",),
                 label_table_depth: int = 0, aggregate_clients: int = 0):
        """``label_table_depth`` > 0: --labels server, the client's circuits commit sample ids
        (that many bits) for labels and ServerStep reads the labels at those ids from the
        server's committed table of that depth. ``aggregate_clients`` ≥ 2: the ``aggregate``
        circuit (SplitFed-V1's proven average of that many client halves) is available too."""
        self.spec = spec
        self.label_table_depth = label_table_depth
        self.aggregate_clients = aggregate_clients
        self.cache = cache
        self.ptau = ptau
        self.contributors = contributors
        self._circuits: dict[str, zk.CompiledCircuit] = {}
        self._keys: dict[str, zk.CircuitKey] = {}
        self._vks: dict[str, zk.VerificationKey] = {}

    def with_label_table(self, depth: int) -> "SplitCircuits":
        """These circuits for a session whose labels are read from a table of ``depth`` (0:
        the client sends labels): ``self`` when they already are, else the same spec, cache,
        ptau, contributors and aggregate with that depth (their circuits and keys are other
        ones)."""
        if depth == self.label_table_depth:
            return self
        return SplitCircuits(self.spec, cache=self.cache, ptau=self.ptau,
                             contributors=self.contributors, label_table_depth=depth,
                             aggregate_clients=self.aggregate_clients)

    def _check_kind(self, kind: str) -> None:
        if kind == AGGREGATE and self.aggregate_clients < 2:
            raise InputError("the aggregate circuit averages the halves of K ≥ 2 clients: build "
                             "SplitCircuits(spec, aggregate_clients=K)")
        if kind not in KINDS and kind != AGGREGATE:
            raise InputError(f"unknown circuit {kind!r}; one of {[*KINDS, AGGREGATE]}")

    def source(self, kind: str) -> str:
        self._check_kind(kind)
        if kind == AGGREGATE:
            return generator.generate_aggregate(self.spec, self.aggregate_clients)
        return generator.generate(self.spec, kind, self.label_table_depth)

    def circuit(self, kind: str) -> zk.CompiledCircuit:
        if kind not in self._circuits:
            compiled = compile_source(self.source(kind), kind, cache=self.cache)
            expected = self.signal_names(kind)
            if compiled.public_signal_names != expected:
                raise InputError(f"generated {kind} has public signals "
                                 f"{compiled.public_signal_names}, expected {expected}")
            # the witness calculator too, so that no proof (or request) pays its compile
            zk.witness.prepare_witness(compiled)
            self._circuits[kind] = compiled
        return self._circuits[kind]

    def signal_names(self, kind: str) -> tuple[str, ...]:
        return statements.signal_names(kind, self._reads_table(kind),
                                       self.aggregate_clients if kind == AGGREGATE else 0)

    def _reads_table(self, kind: str) -> bool:
        return bool(self.label_table_depth) and kind == "server_step"

    def key(self, kind: str) -> zk.CircuitKey:
        if kind not in self._keys:
            self._keys[kind] = zk.setup(self.circuit(kind), ptau=self.ptau,
                                        contributors=self.contributors, cache=self.cache)
        return self._keys[kind]

    def use_key(self, kind: str, key: zk.CircuitKey) -> None:
        """Use ``key`` (e.g. the outcome of a two-party ceremony) for circuit ``kind``."""
        self._check_kind(kind)
        if key.circuit.key != self.circuit(kind).key:
            raise InputError(f"that key belongs to circuit {key.circuit.name}, not to {kind}")
        self._keys[kind] = key
        self._vks.pop(kind, None)

    def verification_key(self, kind: str) -> zk.VerificationKey:
        if kind not in self._vks:
            self._vks[kind] = zk.export_verification_key(self.key(kind))
        return self._vks[kind]

    def witness(self, kind: str, inputs: Mapping[str, object], out: str | Path) -> Path:
        """Compute the witness (WitnessError names the failed template and line)."""
        return zk.calculate_witness(self.circuit(kind), inputs, out)

    def statement_of(self, kind: str, wtns: str | Path) -> Statement:
        circuit = self.circuit(kind)
        return Statement.from_signals(kind, zk.witness.public_signals(circuit,
                                                                      zk.read_witness(wtns)),
                                      self._reads_table(kind))

    def prove(self, kind: str, inputs: Mapping[str, object], backend: str | None = None
              ) -> tuple[zk.Proof, Statement]:
        proof, public = zk.prove(self.key(kind), inputs, backend)
        return proof, Statement.from_signals(kind, public, self._reads_table(kind))

    def verify(self, kind: str, proof: zk.Proof, expected: Statement,
               verifier: str = "native") -> bool:
        """Does ``proof`` prove circuit ``kind`` for exactly the ``expected`` statement?"""
        if expected.kind != kind:
            raise InputError(f"a {expected.kind} statement cannot check a {kind} proof")
        return zk.verify(self.verification_key(kind), proof,
                         zk.PublicSignals(tuple(expected.signals())), verifier)
