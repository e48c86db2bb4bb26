"""The server's routes, one router per concern: sessions (create, status, delete, predict,
transcript), the key ceremony (phase 1, keys) and the steps (forward, backward, prove)."""

from __future__ import annotations

from . import ceremony, sessions, steps

ROUTERS = (sessions.router, ceremony.router, steps.router)
