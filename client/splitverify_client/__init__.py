"""The splitverify client SDK (distribution ``splitverify-client``; no server stack): the
session client (:mod:`.sdk`), its state folder (:mod:`.state`), a training run
(:mod:`.training`) and the ``train`` command (:mod:`.cli`).

The names below are loaded when first used: registering ``train`` with the ``splitverify``
command (which imports this package) must not load torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from splitverify.lazy import lazy_exports

if TYPE_CHECKING:
    from .sdk import ServerError, SplitClient
    from .state import StateFolder

__all__ = ["ServerError", "SplitClient", "StateFolder"]
__getattr__ = lazy_exports(__name__, {"ServerError": "sdk", "SplitClient": "sdk",
                                      "StateFolder": "state"})
