"""The tamper scenarios (``--malicious``): each a subclass of an honest party that overrides
one of its "what is sent" hooks, registered once with its name, side and description. The CLI's
help, ``compare``, ``demo`` and the construction of a party (server, client SDK, local runs)
read this registry; adding a scenario is one registered class here (and its test).

Each cheat is consistent where it can be: what it sends matches the statement it sends, so only
a proof (of the honest computation, or forged) can tell — or, for a replay and a skipped update,
the chain of commitments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch

from .. import model
from ..circuitgen import Statement, statements as st
from ..errors import InputError
from ..model import Params
from .parties import ClientParty, ServerParty, _Party
from .wire import ForwardMessage

Side = Literal["client", "server"]


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
    """Register the decorated party class as the scenario ``name``."""
    def register(cls: type[_Party]) -> type[_Party]:
        if not name.startswith(f"{cls.role}:") or name in _REGISTRY:
            raise ValueError(f"scenario {name!r}: names are unique and start with the side "
                             f"that plays them ({cls.role}:)")
        _REGISTRY[name] = Scenario(name, cls.role, description, cls, needs_proofs)
        return cls
    return register


def all_scenarios() -> tuple[Scenario, ...]:
    return tuple(_REGISTRY.values())


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get(name: str) -> Scenario:
    found = _REGISTRY.get(name)
    if found is None:
        raise InputError(f"unknown scenario {name!r}; one of {list(_REGISTRY)}")
    return found


def for_side(side: Side) -> tuple[Scenario, ...]:
    return tuple(s for s in _REGISTRY.values() if s.side == side)


def played_by(name: str | None, side: Side) -> str | None:
    """``name`` if ``side`` plays it; None if there is none or the other side plays it; an
    InputError if it is no scenario."""
    if name is None:
        return None
    return name if get(name).side == side else None


def require_side(name: str | None, side: Side) -> None:
    """Refuse a scenario the other side plays (a server cannot play a client's cheat)."""
    if name is not None and played_by(name, side) is None:
        raise InputError(f"{name} is a {get(name).side} scenario; the {side} plays one of "
                         f"{[s.name for s in for_side(side)]}")


def party_class(side: Side, name: str | None) -> type[_Party]:
    """The party ``side`` runs: the scenario's when ``side`` plays ``name``, else the honest
    one."""
    played = played_by(name, side)
    if played is not None:
        return _REGISTRY[played].party
    return ClientParty if side == "client" else ServerParty


def help_text() -> str:
    """The ``--malicious`` help: every scenario with what it does."""
    return "A tamper scenario: " + "; ".join(f"{s.name} ({s.description})"
                                             for s in _REGISTRY.values()) + "."


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
