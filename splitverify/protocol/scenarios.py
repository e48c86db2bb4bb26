"""The tamper scenarios (``--malicious``): each a subclass of an honest party that overrides
one of its "what is sent" hooks, registered by its decorator with its name, description and
whether it needs proofs. The construction of a party (server, client SDK, local runs) reads
this registry; :mod:`.scenario_catalog` reads the same decorators from this file's source, so
the CLI's help needs neither the parties nor torch. Adding a scenario is one registered class
here (and its expected detection in the tests).

Each cheat is consistent where it can be: what it sends matches the statement it sends, so only
a proof (of the honest computation, or forged) can tell — or, for a replay and a skipped update,
the chain of commitments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .. import model
from ..circuitgen import AGGREGATE, Statement, statements as st
from ..label_table import LabelTable
from ..model import Params
from . import scenario_catalog as catalog
from .parties import ClientParty, ServerParty, _Party
from .scenario_catalog import Side, for_side, help_text, names, played_by, require_side
from .wire import ForwardMessage

__all__ = ["Scenario", "Side", "all_scenarios", "for_side", "get", "help_text", "names",
           "party_class", "played_by", "require_side", "scenario"]


@dataclass(frozen=True)
class Scenario:
    name: str                    # "<side>:<what>", as --malicious takes it
    side: Side                   # the party that cheats
    description: str             # one line, for --help and reports
    party: type[_Party]
    # without proofs the cheat has nothing to act on, and its run is the honest run
    needs_proofs: bool = False


_REGISTRY: dict[str, Scenario] = {}


def scenario(name: str, description: str, *, needs_proofs: bool = False
             ) -> Callable[[type[_Party]], type[_Party]]:
    """Register the decorated party class as scenario ``name`` (``<side>:<what>``; the
    arguments must be literals: :mod:`.scenario_catalog` reads them from the source)."""
    def register(cls: type[_Party]) -> type[_Party]:
        declared = catalog.get(name)
        if (declared.side != cls.role or name in _REGISTRY
                or (declared.description, declared.needs_proofs) != (description, needs_proofs)):
            raise ValueError(f"scenario {name!r}: one class per scenario, a party of the side "
                             f"that plays it ({declared.side}, not {cls.role}), declared with "
                             "literal arguments")
        _REGISTRY[name] = Scenario(name, cls.role, declared.description, cls,
                                   declared.needs_proofs)
        return cls
    return register


def all_scenarios() -> tuple[Scenario, ...]:
    return tuple(_REGISTRY[name] for name in names())


def get(name: str) -> Scenario:
    return _REGISTRY[catalog.get(name).name]


def party_class(side: Side, name: str | None) -> type[_Party]:
    """The party ``side`` runs: the scenario's when ``side`` plays ``name``, else the honest
    one."""
    played = played_by(name, side)
    if played is not None:
        return _REGISTRY[played].party
    return ClientParty if side == "client" else ServerParty


# -- the scenarios --------------------------------------------------------------------------------

@scenario("server:wrong-gradient", "sends a gradient its proven step did not compute")
class WrongGradient(ServerParty):
    def outgoing_gradient(self, gradient: torch.Tensor, salts: st.ServerSalts,
                          statement: Statement | None
                          ) -> tuple[torch.Tensor, Statement | None]:
        # committed to consistently: the statement matches what is sent, the proof (of the
        # honest step) does not
        gradient = gradient.clone()
        gradient[0, 0] += self.spec.quant.scale // 4
        if statement is not None:
            statement = Statement("server_step", {
                **statement.values, "gradientCommitment": st.gradient_commitment(
                    self.spec, gradient, salts.gradient)})
        return gradient, statement


@scenario("server:forged-proof", "flips one bit of each proof it sends", needs_proofs=True)
class ForgedProof(ServerParty):
    def outgoing_proof(self, proof: str | None) -> str | None:
        if proof is None:
            return None
        raw = bytearray(bytes.fromhex(proof))
        raw[200] ^= 0x01                            # one bit of C
        return raw.hex()


@scenario("server:skip-update", "never applies its SGD update: its weight chain breaks")
class SkipUpdate(ServerParty):
    def next_params(self, result: model.ServerResult) -> Params:
        return self.params


@scenario("server:forked-model",
          "shared server half: serves each session from step 1 on from a private fork of the "
          "weights, not its published chain")
class ForkedModel(ServerParty):
    # only a shared server half has a published chain to fork from: in a session with a
    # server half of its own these hooks are not called, and the run is the honest one
    def step_from(self, head: Params) -> Params:
        return head if self.next_step == 0 else self.params

    def publishes_step(self) -> bool:
        return self.next_step == 0       # the step being taken is still next_step here


@scenario("server:wrong-labels",
          "labels server: computes its loss with labels other than its committed table's, "
          "while its statement names the committed table", needs_proofs=True)
class WrongLabels(ServerParty):
    # only a server holding a label table (--labels server) has labels of its own to swap:
    # in a session whose client sends the labels these hooks are not called
    def step_table(self) -> LabelTable:
        honest = self.label_table
        return LabelTable((honest.labels + 1) % self.spec.classes, honest.classes, honest.salt)

    def outgoing_gradient(self, gradient: torch.Tensor, salts: st.ServerSalts,
                          statement: Statement | None
                          ) -> tuple[torch.Tensor, Statement | None]:
        # its proof can only be of the table it used; the statement sent names the session's
        if statement is not None and self.label_table is not None:
            statement = Statement("server_step", {**statement.values,
                                                  "labelTable": self.label_table.commitment})
        return gradient, statement


@scenario("server:wrong-average",
          "aggregated rounds: sends each client an average one unit off in one entry, "
          "committed to consistently")
class WrongAverage(ServerParty):
    # only rounds of averaged halves (--aggregate every:R) send an average: in a session
    # without them this hook is not called, and the run is the honest one
    def outgoing_average(self, average: Params, statement: Statement | None, slot: int,
                         salt: int) -> tuple[Params, Statement | None]:
        wrong = [tuple(t.clone() for t in tensors) for tensors in average]
        entry = wrong[0][0].view(-1)
        entry[0] += -1 if int(entry[0]) > 0 else 1        # stays in the weights' range
        if statement is not None:
            # committed to consistently: only the proof (of the true average) can tell
            statement = Statement(AGGREGATE, {
                **statement.values,
                f"averageWeights{slot}": st.weights_commitment(self.spec, wrong, salt)})
        return wrong, statement


@scenario("client:poisoned-activation",
          "sends activations its committed weights and data did not produce")
class PoisonedActivation(ClientParty):
    def outgoing_activations(self, activations: torch.Tensor, labels: torch.Tensor,
                             salts: st.ClientSalts, statement: Statement | None
                             ) -> tuple[torch.Tensor, Statement | None]:
        # commits to what it sends (a consistent cheat: only a proof can tell)
        activations = activations.clone()
        activations[0, 0] += self.spec.quant.scale
        if statement is not None:
            statement = Statement("client_forward", {
                **statement.values, "messageCommitment": st.message_commitment(
                    self.spec, activations, labels, salts.message)})
        return activations, statement


@scenario("client:replay", "re-sends step 0's forward message and proof at every later step")
class Replay(ClientParty):
    first: ForwardMessage | None = None

    def outgoing_forward(self, msg: ForwardMessage) -> ForwardMessage:
        if self.first is None:
            self.first = msg
        return self.first


_unread = set(names()) ^ set(_REGISTRY)
if _unread:
    raise ImportError(f"scenarios the catalog and the registry disagree on: {sorted(_unread)}")
