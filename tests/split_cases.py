"""One split training step's reference values, witness inputs and expected statements, for
the circuit tests: random values, or edge values (zeros, the largest magnitudes the spec
allows, negative values with non-zero remainders)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from splitverify import model
from splitverify.circuitgen import KINDS, SplitCircuits, Statement
from splitverify.circuitgen import statements as st
from splitverify.errors import InputError
from splitverify.label_table import LabelTable, SampleIds
from splitverify.model import Params, SplitSpec
from splitverify.refnet import initial_params

CLIENT_SALTS = st.ClientSalts(data=1111, weights=2222, message=3333, state=4444)
SERVER_SALTS = st.ServerSalts(weights=5555, gradient=6666)
SESSION, STEP = 0x5E55_1011, 7


@dataclass
class StepCase:
    spec: SplitSpec
    client: Params
    server: Params
    x: torch.Tensor
    labels: torch.Tensor
    inputs: dict[str, dict]
    statements: dict[str, Statement]
    forward: model.Forward
    server_result: model.ServerResult
    backward: model.Backward


def build_case(spec: SplitSpec, client: Params, server: Params, x: torch.Tensor,
               labels: torch.Tensor) -> StepCase:
    cs, ss = CLIENT_SALTS, SERVER_SALTS
    fwd = model.client_forward(spec, client, x, labels)
    res = model.server_step(spec, server, fwd.output, labels)
    bwd = model.client_backward(spec, client, fwd, res.gradient)
    h, g = fwd.output, res.gradient
    inputs = st.step_inputs(spec, client, server, x, labels, cs, ss, SESSION, STEP)
    statements = {
        "client_forward": st.client_forward_statement(spec, client, x, labels, fwd, cs,
                                                      SESSION, STEP),
        "server_step": st.server_step_statement(spec, server, h, labels, cs.message, res, ss,
                                                SESSION, STEP),
        "client_backward": st.client_backward_statement(spec, client, x, labels, fwd, g,
                                                        ss.gradient, bwd, cs, SESSION, STEP),
    }
    return StepCase(spec, client, server, x, labels, inputs, statements, fwd, res, bwd)


def assert_golden(circuits: SplitCircuits, case, tmp_path: Path) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        wtns = circuits.witness(kind, case.inputs[kind], tmp_path / f"{kind}.wtns")
        got = circuits.statement_of(kind, wtns)
        assert got.values == case.statements[kind].values, kind


def _params(spec: SplitSpec, layers, g: torch.Generator, scale: float) -> Params:
    """Normal weights with standard deviation scale·2/√fan-in (training-like magnitudes)."""
    q = spec.quant
    params = []
    for layer in layers:
        if not layer.parameter_shapes():       # a pool
            params.append(())
            continue
        (_, w_shape), (_, b_shape) = layer.parameter_shapes()   # W: out × fan-in, b: out
        params.append((q.encode(torch.randn(*w_shape, generator=g) * scale * 2 / w_shape[1] ** 0.5),
                       q.encode(torch.randn(*b_shape, generator=g) * scale)))
    return params


def random_case(spec: SplitSpec, seed: int) -> StepCase:
    g = torch.Generator().manual_seed(seed)
    x = spec.quant.encode(torch.rand(spec.batch, spec.features, generator=g), data=True)
    labels = torch.randint(0, spec.classes, (spec.batch,), generator=g)
    return build_case(spec, _params(spec, spec.client, g, 0.5), _params(spec, spec.server, g, 0.5),
                      x, labels)


def edge_case(spec: SplitSpec, seed: int) -> StepCase:
    """For a one-layer-per-half spec: a zero data row, data at both ends of the input range,
    zero weights and biases, a client unit at the most negative pre-activation the spec allows
    (its ReLU output and mask are 0), and a server weight at 2^value_bits − 1 (fed by that unit,
    with labels chosen so the activation gradient stays in range); the remaining values are
    drawn until the whole step stays inside the spec's bounds."""
    q = spec.quant
    g = torch.Generator().manual_seed(seed)
    top_x, top_v = (1 << q.input_bits) - 1, (1 << q.value_bits) - 1
    for _ in range(200):
        x = q.encode(torch.rand(spec.batch, spec.features, generator=g) * 2 - 1, data=True)
        x[0] = 0
        x[-1, 0], x[-1, 1] = top_x, -top_x - 1
        (w1, b1), = client = _params(spec, spec.client, g, 0.3)
        (w2, b2), = server = _params(spec, spec.server, g, 0.3)
        w1[0], b1[0] = 0, -top_v          # pre-activation −(2^value_bits − 1)
        w1[1, 2], b1[1] = 0, 0
        w2[0, 0] = top_v
        labels = torch.full((spec.batch,), spec.classes - 1)
        try:
            case = build_case(spec, client, server, x, labels)
        except InputError:
            continue
        acc = case.forward.acc[0]
        if bool(((acc < 0) & (acc % q.scale != 0)).any()):   # a negative non-exact rescale
            return case
    raise AssertionError("no edge case inside the bounds")


def data_batches(spec: SplitSpec, n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """n random data batches (features in [0, 1), random labels) for protocol runs."""
    g = torch.Generator().manual_seed(seed)
    q = spec.quant
    return [(q.encode(torch.rand(spec.batch, spec.features, generator=g), data=True),
             torch.randint(0, spec.classes, (spec.batch,), generator=g)) for _ in range(n)]


def vertical_split(spec: SplitSpec, steps: int, seed: int, salt: int):
    """A vertical split of ``steps`` random batches: the client's batches name their rows by
    sample id (batch t holds ids t·batch … (t+1)·batch − 1), the server's table holds those
    rows' labels (rows aligned by id); with the same batches labelled at the client, for
    comparison. Returns (labelled batches, batches of ids, the table)."""
    labelled = data_batches(spec, steps, seed)
    ids = [torch.arange(step * spec.batch, (step + 1) * spec.batch) for step in range(steps)]
    table = LabelTable(torch.cat([labels for _, labels in labelled]), spec.classes, salt)
    return labelled, [(x, i) for (x, _), i in zip(labelled, ids)], table


def reference_weights(spec: SplitSpec, steps: int, seed: int, batches, *,
                      start: tuple[Params, Params] | None = None) -> tuple[Params, Params]:
    """Both halves' weights after ``steps`` honest steps from ``start`` (default
    ``initial_params(spec, seed)``), from the integer reference (what any correct run of the
    protocol must end with)."""
    client, server = start or initial_params(spec, seed)
    for x, labels in batches[:steps]:
        fwd = model.client_forward(spec, client, x, labels)
        result = model.server_step(spec, server, fwd.output, labels)
        server = result.backward.new_params
        client = model.client_backward(spec, client, fwd, result.gradient).new_params
    return client, server


def same_params(a: Params, b: Params) -> bool:
    return len(a) == len(b) and all((w1 == w2).all() and (b1 == b2).all()
                                    for (w1, b1), (w2, b2) in zip(a, b))


@dataclass
class TableCase:
    """The step of ``base`` under --labels server: the server's table holds ``base.labels`` at
    ``ids`` (other rows hold other labels); each circuit's witness inputs and the statement its
    verifier expects (the client's name the ids, not the labels; ServerStep's, the ids and the
    session's table commitment)."""
    base: StepCase
    table: LabelTable
    ids: torch.Tensor
    inputs: dict[str, dict]
    statements: dict[str, Statement]


TABLE_SALT = 7777


def table_case(base: StepCase, table_size: int, seed: int) -> TableCase:
    spec = base.spec
    g = torch.Generator().manual_seed(seed)
    ids = torch.randperm(table_size, generator=g)[:spec.batch]
    # the other rows hold a different label than any row of the batch where classes allow, so a
    # path to a wrong row also has a wrong leaf
    table_labels = (base.labels[0] + 1 + torch.randint(0, spec.classes - 1, (table_size,),
                                                       generator=g)) % spec.classes
    table_labels[ids] = base.labels
    table = LabelTable(table_labels, spec.classes, TABLE_SALT)
    h, res, g = base.forward.output, base.server_result, base.server_result.gradient
    cs, ss, rows = CLIENT_SALTS, SERVER_SALTS, SampleIds(ids, table.depth)
    fwd_args = (spec, base.client, base.x, rows, base.forward, cs, SESSION, STEP)
    bwd_args = (spec, base.client, base.x, rows, base.forward, g, ss.gradient, base.backward, cs,
                SESSION, STEP)
    inputs = {
        "client_forward": st.client_forward_inputs(*fwd_args),
        "server_step": st.server_step_table_inputs(spec, base.server, h, ids, table, cs.message,
                                                   res, ss, SESSION, STEP),
        "client_backward": st.client_backward_inputs(*bwd_args)}
    statements = {
        "client_forward": st.client_forward_statement(*fwd_args),
        "server_step": st.server_step_table_statement(spec, base.server, h, ids, table.depth,
                                                      table.commitment, cs.message, res, ss,
                                                      SESSION, STEP),
        "client_backward": st.client_backward_statement(*bwd_args)}
    return TableCase(base, table, ids, inputs, statements)


@dataclass
class AggregateCase:
    """SplitFed-V1's averaging of ``len(halves)`` client halves: the halves (edge values where
    asked: both ends of the range, sums of mixed sign that K does not divide), salts, ids."""
    spec: SplitSpec
    halves: list[Params]
    salts: list[int]
    sessions: list[int]
    round: int

    @property
    def inputs(self) -> dict:
        return st.aggregate_inputs(self.spec, self.halves, self.salts, self.sessions, self.round)

    @property
    def statement(self) -> Statement:
        return st.aggregate_honest_statement(self.spec, self.halves, self.salts, self.sessions,
                                             self.round)


def aggregate_case(spec: SplitSpec, clients: int, seed: int) -> AggregateCase:
    top = 1 << spec.quant.value_bits
    halves = []
    for j in range(clients):
        half = []
        for tensors in model.init_params(spec.client, seed + j, spec.quant):
            edged = []
            for t in tensors:
                flat = t.clone().reshape(-1)
                # entry 0: every client at the top of the range; entry 1: at the bottom;
                # entry 2: one client at the bottom, the others at 1 (a negative sum that
                # K = 2 and K = 3 do not divide)
                flat[0], flat[1] = top - 1, -top
                if flat.numel() > 2:
                    flat[2] = -top if j == 0 else 1
                edged.append(flat.reshape(t.shape))
            half.append(tuple(edged))
        halves.append(half)
    return AggregateCase(spec, halves, [7000 + j for j in range(clients)],
                         [0x5E55_2000 + j for j in range(clients)], 4)
