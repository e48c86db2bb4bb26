"""One server half trained by several clients (``create_app(shared_model=True)``, ``serve
--shared-model``): SplitFed-V2 style, each client keeps its own client half, and the server
half is updated by each client's forward message in turn, in the order the server takes them.

Every session's ServerStep is computed on, and proven against, the chain's current head (its
``weightsBefore`` is the commitment of the shared weights, under the shared model's one salt),
so the chain is one sequence of proven updates whatever client caused each. Steps are
serialized by :attr:`SharedModel.lock` (held from loading the head into the session's party to
the commit of the new head); the new weights and the chain entry are committed in the
transaction of the step's message (:meth:`SessionStore.save`), before the answer leaves, and
the in-memory head moves only after that commit. A restarted server reloads the shared
weights and the chain from the store.
"""

from __future__ import annotations

import threading

from splitverify.circuitgen import statements as st
from splitverify.errors import InputError
from splitverify.model import Params, SplitSpec
from splitverify.protocol import ServerParty, params_from_lists, params_to_lists
from splitverify.protocol.wire import ProofMode, random_field
from splitverify.refnet import initial_params
from splitverify.shared_chain import statement_sha256

from .server_model import ServerHalf
from .store import SessionStore

# the seed of the shared server half's initial weights when the server has no model of its own
SHARED_SEED = 0


def server_half_key(spec: SplitSpec) -> str:
    """What two sessions must share to train one server half: its layers and fixed point."""
    return repr((spec.server, spec.quant))


class SharedModel:
    """The shared server half: its weights, their salt and the chain of ServerSteps."""

    def __init__(self, store: SessionStore, server_half: ServerHalf | None):
        self.store, self.server_half = store, server_half
        self.lock = threading.Lock()
        model, self.chain = store.load_shared()
        self.key: str | None = None
        self.params: Params | None = None
        self.salt = 0
        self.initial_commitment = 0
        # --labels server: the salt of the ONE label table every session of the shared model
        # reads (its commitment is the same in every session's statements)
        self.label_salt: int | None = None
        if model is not None:
            self.key, self.salt = model["key"], model["salt"]
            self.params = params_from_lists(model["params"])
            self.initial_commitment = model["initial_commitment"]
            self.label_salt = model.get("label_salt")   # absent in rows stored before it

    def head(self) -> int:
        """The commitment of the weights the next ServerStep starts from."""
        return self.chain[-1]["weights_after"] if self.chain else self.initial_commitment

    def admit(self, spec: SplitSpec, mode: ProofMode) -> None:
        """A new session may train this model: its proof mode commits (the chain is one of
        commitments) and proves in the step's message or on challenge (``pipelined:W`` rolls a
        cheated session back, which a chain other clients built on cannot follow), and its
        server half is the shared one. The first session fixes the shared half (its weights:
        the server's own model, or seeded)."""
        if not mode.commits or mode.kind == "pipelined":
            raise InputError(f"this server trains one shared server half (--shared-model), whose "
                             f"chain is one of proven commitments: proof mode {mode} cannot join "
                             "it; use every, audit:P or commit")
        key = server_half_key(spec)
        with self.lock:
            if self.key is None:
                params = (self.server_half.params_for(spec) if self.server_half is not None
                          else initial_params(spec, SHARED_SEED)[1])
                salt = random_field()
                commitment = st.weights_commitment(spec, params, salt)
                self.label_salt = random_field()
                self.store.save_shared(self._model_row(key, params, salt, commitment))
                self.key, self.params, self.salt = key, params, salt
                self.initial_commitment = commitment
            elif self.label_salt is None:      # a model stored before the table's salt was
                self.label_salt = random_field()
                self.store.save_shared(self._model_row(self.key, self.params, self.salt,
                                                       self.initial_commitment))
            elif key != self.key:
                raise InputError("this server trains one shared server half (--shared-model) "
                                 f"with server layers and fixed point {self.key}; the session "
                                 f"asks for {key}: use the same server layers")

    def _model_row(self, key: str, params: Params, salt: int, initial_commitment: int
                   ) -> dict:
        return {"key": key, "params": params_to_lists(params), "salt": salt,
                "initial_commitment": initial_commitment, "label_salt": self.label_salt}

    def load_into(self, party: ServerParty) -> None:
        """The session's party computes its next step on the shared head (caller holds
        :attr:`lock`)."""
        party.params, party.weights_salt = party.step_from(self.params), self.salt

    def step_taken(self, party: ServerParty, session_id: int, step: int,
                   public: dict[str, int]) -> tuple[dict, dict]:
        """The shared model's new state and chain entry after ``party``'s ServerStep
        ``public`` (to be committed with the session's message, then :meth:`advance`)."""
        entry = {"index": len(self.chain), "session": str(session_id), "step": step,
                 "weights_before": public["weightsBefore"],
                 "weights_after": public["weightsAfter"],
                 "statement_sha256": statement_sha256(public)}
        return (self._model_row(self.key, party.params, self.salt, self.initial_commitment),
                entry)

    def advance(self, party: ServerParty, entry: dict) -> None:
        """The committed step is the new head."""
        self.params = party.params
        self.chain.append(entry)

    def published(self) -> dict:
        """The chain as ``GET /chain`` shows it."""
        return {"initial_weights_commitment": self.initial_commitment, "head": self.head(),
                "entries": list(self.chain)}
