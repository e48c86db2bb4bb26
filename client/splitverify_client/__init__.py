"""The splitverify client SDK (distribution ``splitverify-client``; no server stack): the
session client (:mod:`.sdk`), its state folder (:mod:`.state`), a training run
(:mod:`.training`) and the ``train`` command (:mod:`.cli`)."""

from .sdk import ServerError, SplitClient
from .state import StateFolder

__all__ = ["ServerError", "SplitClient", "StateFolder"]
