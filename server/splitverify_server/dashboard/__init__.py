"""The live dashboard (``GET /``): what the server's sessions show the public — statements,
commitments, timings, outcomes, the ceremony record, ledger entries — rendered on the server,
refreshed by the page every second. Never a token, a tensor, a weight or a salt.

:mod:`.events` records what the session state does not keep (the statements the server sends,
when, and their ledger entries); :mod:`.view` reads a session into public values only;
:mod:`.render` turns them into HTML; :mod:`.assets` finds the page's script, its style and the
pinned charting library (uPlot, from npm); the routes are in :mod:`..routes.dashboard`."""

from __future__ import annotations

from dataclasses import dataclass, field

from .events import EventLog


@dataclass
class Dashboard:
    """The app's dashboard: its event log and, when the operator sets one
    (``serve --dashboard-token``), the token every dashboard page needs."""
    events: EventLog = field(default_factory=EventLog)
    token: str | None = None


__all__ = ["Dashboard", "EventLog"]
