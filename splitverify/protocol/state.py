"""A party's state as JSON-able data (taken after every message it handled, so that a restart
resumes exactly there) and back: weights, the step in flight, the prover's and verifier's
records."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .. import model
from ..label_table import SampleIds
from ..circuitgen import Statement, statements as st
from ..model import Params, SplitSpec



def tensor(rows: list[list[int]] | list[int]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.int64)


def params_to_lists(params: Params) -> list[list]:
    return [[w.tolist(), b.tolist()] for w, b in params]


def params_from_lists(rows: list[list]) -> Params:
    return [(tensor(w), tensor(b)) for w, b in rows]


@dataclass
class ClientStep:
    """The client's forward step waiting for its gradient."""
    step: int
    x: torch.Tensor
    labels: torch.Tensor | SampleIds     # SampleIds under --labels server
    fwd: model.Forward
    salts: st.ClientSalts
    statement: Statement | None     # the statement sent (None when mode is off)

    def to_state(self) -> dict:
        """Its forward pass is not kept: the weights are still those it ran on."""
        rows = ({"ids": self.labels.ids.tolist(), "depth": self.labels.depth}
                if isinstance(self.labels, SampleIds) else {"labels": self.labels.tolist()})
        return {"step": self.step, "x": self.x.tolist(), **rows,
                "salts": asdict(self.salts),
                "statement": None if self.statement is None else self.statement.values}

    @classmethod
    def from_state(cls, state: dict, spec: SplitSpec, params: Params) -> "ClientStep":
        x = tensor(state["x"])
        labels = (SampleIds(tensor(state["ids"]), state["depth"]) if "ids" in state
                  else tensor(state["labels"]))
        held = None if isinstance(labels, SampleIds) else labels
        return cls(state["step"], x, labels, model.client_forward(spec, params, x, held),
                   st.ClientSalts(**state["salts"]),
                   None if state["statement"] is None else
                   Statement("client_forward", state["statement"]))


@dataclass
class ServerStep:
    """The server's step waiting for the client's backward message."""
    step: int
    forward: dict[str, int] | None
    gradient_commitment: int | None
    loss: int
