"""The tamper scenarios (``--malicious``): each a subclass of an honest party that overrides
one of its "what is sent" hooks, registered under the name :mod:`.scenario_catalog` declares
(with its side and description, readable without loading the parties: the CLI's help). The
construction of a party (server, client SDK, local runs) reads this registry; adding a scenario
is its declaration there and one registered class here (and its test).

Each cheat is consistent where it can be: what it sends matches the statement it sends, so only
a proof (of the honest computation, or forged) can tell — or, for a replay and a skipped update,
the chain of commitments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .. import model
from ..circuitgen import Statement, statements as st
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


def scenario(name: str) -> Callable[[type[_Party]], type[_Party]]:
    """Register the decorated party class as the declared scenario ``name``."""
    def register(cls: type[_Party]) -> type[_Party]:
        declared = catalog.get(name)
        if declared.side != cls.role or name in _REGISTRY:
            raise ValueError(f"scenario {name!r}: one class per declared scenario, a party of "
                             f"the side that plays it ({declared.side}, not {cls.role})")
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

@scenario("server:wrong-gradient")
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


@scenario("server:forged-proof")
class ForgedProof(ServerParty):
    def outgoing_proof(self, proof: str | None) -> str | None:
        if proof is None:
            return None
        raw = bytearray(bytes.fromhex(proof))
        raw[200] ^= 0x01                            # one bit of C
        return raw.hex()


@scenario("server:skip-update")
class SkipUpdate(ServerParty):
    def next_params(self, result: model.ServerResult) -> Params:
        return self.params


@scenario("client:poisoned-activation")
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


@scenario("client:replay")
class Replay(ClientParty):
    first: ForwardMessage | None = None

    def outgoing_forward(self, msg: ForwardMessage) -> ForwardMessage:
        if self.first is None:
            self.first = msg
        return self.first


_unclassed = set(names()) - set(_REGISTRY)
if _unclassed:
    raise ImportError(f"declared scenarios without a party class: {sorted(_unclassed)}")
