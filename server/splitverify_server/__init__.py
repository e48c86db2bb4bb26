"""The splitverify server (distribution ``splitverify-server``): the FastAPI app (:mod:`.app`),
its hostile-traffic guards and session store, and the commands that run a server — ``serve``,
and ``demo``, ``compare`` and ``bench`` (:mod:`.apps`), which run both parties.

``create_app`` is loaded when first used: registering the commands with ``splitverify`` (which
imports this package) must not load FastAPI or torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from splitverify.lazy import lazy_exports

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["create_app"]
__getattr__ = lazy_exports(__name__, {"create_app": "app"})
