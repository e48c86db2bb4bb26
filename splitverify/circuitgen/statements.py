"""What each circuit proves, in Python: its witness inputs and its public statement.

The witness inputs come from the integer reference of :mod:`splitverify.model` (the values
training uses); the statements' commitments are computed with :mod:`splitverify.commit`, so a
verifier builds the statement it expects from what it holds (the tensor it received, the
commitments it saw before) and checks a proof against exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..commit import Segment, commit, pack
from ..errors import InputError
from ..label_table import LabelTable, SampleIds
from ..model import (Backward, Forward, Layer, Params, ServerResult, SplitSpec,
                     average_params, client_backward, client_forward, onehot, server_step)
from ..quant import to_field
from ..zk.curve import R as FIELD


# Public signals of each circuit, in snarkjs order (outputs, then the public inputs).
PUBLIC_SIGNALS = {
    "client_forward": ("dataCommitment", "weightsCommitment", "messageCommitment",
                       "stateCommitment", "session", "step"),
    "server_step": ("messageCommitment", "weightsBefore", "loss", "weightsAfter",
                    "gradientCommitment", "session", "step"),
    "client_backward": ("gradientCommitment", "dataCommitment", "stateCommitment",
                        "weightsBefore", "weightsAfter", "session", "step"),
}

# ServerStep with labels from the server's table (--labels server): the table's commitment is
# public too, right after the message it is read for.
SERVER_STEP_TABLE_SIGNALS = ("messageCommitment", "labelTable", "weightsBefore", "loss",
                             "weightsAfter", "gradientCommitment", "session", "step")


AGGREGATE = "aggregate"


def aggregate_signal_names(clients: int) -> tuple[str, ...]:
    """The Aggregate circuit's public signals for ``clients`` halves (snarkjs order: its
    outputs, then its public inputs)."""
    if clients < 2:
        raise InputError(f"an average needs at least 2 clients, not {clients}")
    return (*(f"clientWeights{j}" for j in range(clients)),
            *(f"averageWeights{j}" for j in range(clients)),
            *(f"session{j}" for j in range(clients)), "round")


def signal_names(kind: str, label_table: bool = False, clients: int = 0) -> tuple[str, ...]:
    """The public signals of circuit ``kind``, in snarkjs order; ``label_table``: the
    --labels server form of server_step; ``clients``: how many halves an Aggregate averages."""
    if kind == AGGREGATE:
        return aggregate_signal_names(clients)
    if kind not in PUBLIC_SIGNALS:
        raise InputError(f"unknown circuit {kind!r}; one of {sorted(PUBLIC_SIGNALS)}")
    if label_table:
        if kind != "server_step":
            raise InputError(f"only server_step reads a label table, not {kind}")
        return SERVER_STEP_TABLE_SIGNALS
    return PUBLIC_SIGNALS[kind]


@dataclass(frozen=True)
class Statement:
    """The public inputs of one proof, by name (see PUBLIC_SIGNALS)."""
    kind: str
    values: dict[str, int] = field(hash=False)

    def __post_init__(self):
        expected = self.names
        if set(self.values) != set(expected):
            raise InputError(f"a {self.kind} statement needs {list(expected)}, got "
                             f"{sorted(self.values)}")

    @property
    def names(self) -> tuple[str, ...]:
        """Its public signals' names in order (a label table's commitment marks the
        --labels server form)."""
        return signal_names(self.kind, "labelTable" in self.values,
                            sum(name.startswith("clientWeights") for name in self.values))

    def signals(self) -> list[int]:
        out = [int(self.values[name]) for name in self.names]
        bad = [n for n, v in zip(self.names, out) if not 0 <= v < FIELD]
        if bad:
            raise InputError(f"{self.kind} public inputs {bad} are not field elements in [0, r)")
        return out

    @classmethod
    def from_signals(cls, kind: str, signals, label_table: bool = False) -> "Statement":
        values = list(signals)
        # an Aggregate of K halves has 3K + 1 public signals
        names = signal_names(kind, label_table, (len(values) - 1) // 3 if kind == AGGREGATE
                             else 0)
        if len(values) != len(names):
            raise InputError(f"a {kind} proof has {len(names)} public signals, got {len(values)}")
        return cls(kind, dict(zip(names, values)))


# -- commitments ------------------------------------------------------------------------------

def _flat(t: torch.Tensor) -> torch.Tensor:
    """The tensor's values in one row, as they stay (int64): the commitment packs them in C."""
    return t.reshape(-1)


# A batch's rows are named by their labels (class indices, committed one-hot) or, under
# --labels server, by their sample ids (SampleIds, committed in the table's depth in bits).
Rows = torch.Tensor | SampleIds


def _rows_segment(spec: SplitSpec, rows: Rows) -> Segment:
    if isinstance(rows, SampleIds):
        return Segment.unsigned(_flat(rows.ids), rows.depth)
    return Segment.unsigned(_flat(onehot(rows, spec.classes)), 1)


def _rows_inputs(spec: SplitSpec, rows: Rows) -> dict:
    if isinstance(rows, SampleIds):
        return {"ids": [int(i) for i in rows.ids]}
    return {"labels": _field(onehot(rows, spec.classes))}


def data_commitment(spec: SplitSpec, x: torch.Tensor, labels: Rows, salt: int) -> int:
    return commit("data", [Segment.signed(_flat(x), spec.quant.input_bits),
                           _rows_segment(spec, labels)], salt)


def weight_segments(spec: SplitSpec, params: Params) -> list[Segment]:
    return [Segment.signed(_flat(t), spec.quant.value_bits, slack=1)
            for pair in params for t in pair]


def weights_commitment(spec: SplitSpec, params: Params, salt: int) -> int:
    return commit("weights", weight_segments(spec, params), salt)


def message_commitment(spec: SplitSpec, activations: torch.Tensor, labels: Rows,
                       salt: int) -> int:
    return commit("message", [Segment.signed(_flat(activations), spec.quant.value_bits),
                              _rows_segment(spec, labels)], salt)


def gradient_commitment(spec: SplitSpec, gradient: torch.Tensor, salt: int) -> int:
    return commit("gradient", [Segment.signed(_flat(gradient), spec.quant.value_bits)], salt)


def client_state(spec: SplitSpec, fwd: Forward) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """What the client keeps from its forward pass for its backward proof: the ReLU masks
    (one per ReLU layer, flat) and the inputs of its layers after the first."""
    masks = [(fwd.pre[i] > 0).to(torch.int64).flatten()
             for i, layer in enumerate(spec.client) if layer.relu]
    return masks, fwd.inputs[1:]


def state_commitment(spec: SplitSpec, fwd: Forward, salt: int) -> int:
    masks, acts = client_state(spec, fwd)
    v = spec.quant.value_bits
    return commit("state", [Segment.unsigned(_flat(m), 1) for m in masks]
                  + [Segment.signed(_flat(a), v) for a in acts], salt)


# -- witness inputs and statements ----------------------------------------------------------

def _field(t: torch.Tensor) -> list:
    """A signed int64 tensor as nested lists of field elements."""
    if t.dim() == 1:
        return to_field(t, FIELD)
    return [_field(row) for row in t]


def _params_inputs(layers: tuple[Layer, ...], params: Params) -> dict:
    """Each layer's parameters under their circuit names (``w0``, ``b0``, …)."""
    return {f"{name}{i}": _field(t) for i, (layer, tensors) in enumerate(zip(layers, params))
            for (name, _), t in zip(layer.parameter_shapes(), tensors)}


@dataclass(frozen=True)
class ClientSalts:
    data: int
    weights: int
    message: int
    state: int


@dataclass(frozen=True)
class ServerSalts:
    weights: int
    gradient: int


def _claimed(layers, prefix: str, accumulators: list, first: int = 0) -> dict:
    """The claimed accumulators ``prefix{i}`` of the layers that claim them (a pool's the
    circuit computes: not inputs)."""
    return {f"{prefix}{i}": _field(acc) for i, (layer, acc)
            in enumerate(zip(layers, accumulators), start=first) if layer.claims_accumulators}


def client_forward_inputs(spec: SplitSpec, params: Params, x: torch.Tensor,
                          labels: Rows, fwd: Forward, salts: ClientSalts,
                          session: int, step: int) -> dict:
    return {"session": session, "step": step, "x": _field(x),
            **_rows_inputs(spec, labels), "dataSalt": salts.data,
            **_params_inputs(spec.client, params), "weightsSalt": salts.weights,
            **_claimed(spec.client, "acc", fwd.acc),
            "messageSalt": salts.message, "stateSalt": salts.state}


def client_forward_statement(spec: SplitSpec, params: Params, x: torch.Tensor,
                             labels: Rows, fwd: Forward, salts: ClientSalts,
                             session: int, step: int) -> Statement:
    return Statement("client_forward", {
        "dataCommitment": data_commitment(spec, x, labels, salts.data),
        "weightsCommitment": weights_commitment(spec, params, salts.weights),
        "messageCommitment": message_commitment(spec, fwd.output, labels, salts.message),
        "stateCommitment": state_commitment(spec, fwd, salts.state),
        "session": session, "step": step})


def server_step_inputs(spec: SplitSpec, params: Params, activations: torch.Tensor,
                       labels: torch.Tensor, message_salt: int, result: ServerResult,
                       salts: ServerSalts, session: int, step: int) -> dict:
    bwd = result.backward
    inputs = {"session": session, "step": step, "activations": _field(activations),
              "labels": _field(onehot(labels, spec.classes)), "messageSalt": message_salt,
              **_params_inputs(spec.server, params), "weightsSalt": salts.weights,
              **_claimed(spec.server, "acc", result.forward.acc),
              **_claimed(spec.server, "gw", bwd.weight_grad_acc),
              **_claimed(spec.server, "gx", bwd.input_grad_acc),
              "gradientSalt": salts.gradient}
    return inputs


def server_step_statement(spec: SplitSpec, params: Params, activations: torch.Tensor,
                          labels: torch.Tensor, message_salt: int, result: ServerResult,
                          salts: ServerSalts, session: int, step: int) -> Statement:
    return Statement("server_step", {
        "messageCommitment": message_commitment(spec, activations, labels, message_salt),
        **_server_step_outcome(spec, params, result, salts, session, step)})


def _server_step_outcome(spec: SplitSpec, params: Params, result: ServerResult,
                         salts: ServerSalts, session: int, step: int) -> dict[str, int]:
    """ServerStep's public signals past the message (whichever holds the labels)."""
    return {"weightsBefore": weights_commitment(spec, params, salts.weights),
            "loss": result.loss,
            "weightsAfter": weights_commitment(spec, result.backward.new_params, salts.weights),
            "gradientCommitment": gradient_commitment(spec, result.gradient, salts.gradient),
            "session": session, "step": step}


def server_step_table_inputs(spec: SplitSpec, params: Params, activations: torch.Tensor,
                             ids: torch.Tensor, table: LabelTable, message_salt: int,
                             result: ServerResult, salts: ServerSalts, session: int,
                             step: int) -> dict:
    """ServerStep's witness with labels from ``table`` at ``ids`` (``result`` is the step on
    ``table.labels_at(ids)``): those labels, each row's Merkle path, the root and its salt."""
    inputs = server_step_inputs(spec, params, activations, table.labels_at(ids), message_salt,
                                result, salts, session, step)
    inputs.update({"ids": [int(i) for i in ids], "labelRoot": table.root,
                   "labelSalt": table.salt, "labelSiblings": table.siblings(ids)})
    return inputs


def server_step_table_statement(spec: SplitSpec, params: Params, activations: torch.Tensor,
                                ids: torch.Tensor, table_depth: int, table_commitment: int,
                                message_salt: int, result: ServerResult, salts: ServerSalts,
                                session: int, step: int) -> Statement:
    """What a client expects of ServerStep under --labels server: its activations and the ids
    it named, the table commitment the session published; the client never sees the labels."""
    return Statement("server_step", {
        "messageCommitment": message_commitment(spec, activations,
                                                SampleIds(ids, table_depth), message_salt),
        "labelTable": table_commitment,
        **_server_step_outcome(spec, params, result, salts, session, step)})


def client_backward_inputs(spec: SplitSpec, params: Params, x: torch.Tensor,
                           labels: Rows, fwd: Forward, gradient: torch.Tensor,
                           gradient_salt: int, bwd: Backward, salts: ClientSalts,
                           session: int, step: int) -> dict:
    masks, acts = client_state(spec, fwd)
    relu_layers = [i for i, layer in enumerate(spec.client) if layer.relu]
    inputs = {"session": session, "step": step, "gradient": _field(gradient),
              "gradientSalt": gradient_salt, "x": _field(x),
              **_rows_inputs(spec, labels), "dataSalt": salts.data,
              **{f"maskIn{i}": _field(m) for i, m in zip(relu_layers, masks)},
              **{f"act{i + 1}": _field(a) for i, a in enumerate(acts)},
              "stateSalt": salts.state, "weightsSalt": salts.weights}
    # the first layer's parameters are only updated, never multiplied: the circuit takes them
    # packed (as committed) and subtracts the packed steps; later layers are decoded (dX needs W)
    first = [f"{name}0" for name, _ in spec.client[0].parameter_shapes()]
    segments = weight_segments(spec, params)
    inputs.update({f"{name}Packed": pack(segment.slots(), segment.width)
                   for name, segment in zip(first, segments)})
    inputs.update({k: v for k, v in _params_inputs(spec.client, params).items()
                   if k not in first})
    inputs.update(_claimed(spec.client, "gw", bwd.weight_grad_acc))
    inputs.update(_claimed(spec.client[1:], "gx", bwd.input_grad_acc[1:], first=1))
    return inputs


def client_backward_statement(spec: SplitSpec, params: Params, x: torch.Tensor,
                              labels: Rows, fwd: Forward, gradient: torch.Tensor,
                              gradient_salt: int, bwd: Backward, salts: ClientSalts,
                              session: int, step: int) -> Statement:
    return Statement("client_backward", {
        "gradientCommitment": gradient_commitment(spec, gradient, gradient_salt),
        "dataCommitment": data_commitment(spec, x, labels, salts.data),
        "stateCommitment": state_commitment(spec, fwd, salts.state),
        "weightsBefore": weights_commitment(spec, params, salts.weights),
        "weightsAfter": weights_commitment(spec, bwd.new_params, salts.weights),
        "session": session, "step": step})


def step_inputs(spec: SplitSpec, client: Params, server: Params, x: torch.Tensor,
                labels: torch.Tensor, client_salts: ClientSalts, server_salts: ServerSalts,
                session: int, step: int) -> dict[str, dict]:
    """The witness inputs of all three proofs of one honest step (the reference model's values
    for this batch and these parameters), by circuit kind."""
    fwd = client_forward(spec, client, x, labels)
    result = server_step(spec, server, fwd.output, labels)
    bwd = client_backward(spec, client, fwd, result.gradient)
    return {
        "client_forward": client_forward_inputs(spec, client, x, labels, fwd, client_salts,
                                                session, step),
        "server_step": server_step_inputs(spec, server, fwd.output, labels, client_salts.message,
                                          result, server_salts, session, step),
        "client_backward": client_backward_inputs(spec, client, x, labels, fwd, result.gradient,
                                                  server_salts.gradient, bwd, client_salts,
                                                  session, step),
    }


# -- SplitFed-V1: the clients' halves averaged --------------------------------------------------

def aggregate_inputs(spec: SplitSpec, halves: list[Params], salts: list[int],
                     sessions: list[int], round_: int, average: Params | None = None) -> dict:
    """The Aggregate circuit's witness: each client's half (``c{j}_w0``, …) and weights salt,
    the average (the reference's, ``model.average_params``, unless given), the public ids."""
    if not len(halves) == len(salts) == len(sessions):
        raise InputError(f"{len(halves)} halves, {len(salts)} salts and {len(sessions)} "
                         "sessions: one of each per client")
    if average is None:
        average = average_params(spec, spec.client, halves)
    inputs: dict = {**{f"session{j}": s for j, s in enumerate(sessions)}, "round": round_}
    for j, (half, salt) in enumerate(zip(halves, salts)):
        inputs.update({f"c{j}_{name}": v for name, v in _params_inputs(spec.client, half).items()})
        inputs[f"weightsSalt{j}"] = salt
    inputs.update({f"avg_{name}": v for name, v in _params_inputs(spec.client, average).items()})
    return inputs


def aggregate_statement(spec: SplitSpec, client_commitments: list[int],
                        average_commitments: list[int], sessions: list[int], round_: int
                        ) -> Statement:
    """The Aggregate statement from commitments: the K clients' weights commitments, the
    average's commitment under each client's salt, the sessions, the round."""
    return Statement(AGGREGATE, {
        **{f"clientWeights{j}": c for j, c in enumerate(client_commitments)},
        **{f"averageWeights{j}": c for j, c in enumerate(average_commitments)},
        **{f"session{j}": s for j, s in enumerate(sessions)}, "round": round_})


def aggregate_honest_statement(spec: SplitSpec, halves: list[Params], salts: list[int],
                               sessions: list[int], round_: int) -> Statement:
    """What the aggregator proves, from the halves and salts it holds."""
    average = average_params(spec, spec.client, halves)
    return aggregate_statement(
        spec, [weights_commitment(spec, h, s) for h, s in zip(halves, salts)],
        [weights_commitment(spec, average, s) for s in salts], sessions, round_)
