"""The splitverify server (distribution ``splitverify-server``): the FastAPI app (:mod:`.app`),
its hostile-traffic guards and session store, and the commands that run a server — ``serve``,
and ``demo``, ``compare`` and ``bench`` (:mod:`.apps`), which run both parties."""

from .app import create_app

__all__ = ["create_app"]
