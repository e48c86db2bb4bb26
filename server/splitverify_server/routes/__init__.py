"""The server's routes, one router per concern: sessions (create, status, delete, predict,
transcript), the shared model's chain, the key ceremony (phase 1, keys), the steps (forward, backward, prove) and the live
dashboard (``/``, outside the API's schema)."""

from __future__ import annotations

from . import ceremony, chain, dashboard, sessions, steps

ROUTERS = (sessions.router, ceremony.router, steps.router, chain.router, dashboard.router)
