"""The server's routes, one router per concern: sessions (create, status, delete, predict,
transcript), the shared model's chain and its rounds of averaged client halves, the key ceremony (phase 1, keys), the steps (forward, backward, prove) and the live
dashboard (``/``, outside the API's schema)."""

from __future__ import annotations

from . import ceremony, chain, dashboard, rounds, sessions, steps

ROUTERS = (sessions.router, ceremony.router, steps.router, chain.router, rounds.router, dashboard.router)
