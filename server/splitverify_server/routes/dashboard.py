"""The live dashboard: ``GET /`` (the sessions), ``GET /dashboard/sessions/{id}`` (one session's
page), ``GET /dashboard/sessions/{id}/view.json`` (the same values as JSON) and the page's files
under ``/dashboard/assets/``. Each page with ``?part=main`` answers only its live part (the page
fetches it every second: polling rather than server-sent events, so an open page holds no
connection or worker thread between updates and each update passes the same token check).

Only public values (:mod:`..dashboard.view`); no session token is needed. With
``serve --dashboard-token T`` every page and view needs T: ``?token=T`` once (it is then kept in
an HTTP-only cookie for the pages' updates), the cookie, or ``Authorization: Bearer T``. The
assets are the page's code only and need nothing. Reading changes nothing: no session's idle
clock restarts, no expiry sweep runs."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ..dashboard import Dashboard, assets, render, view
from ..deps import Service
from ..guard import bearer_token
from ..refusals import MissingToken, NoSuchSession, Refusal, WrongToken
from ..responses import SessionId
from ..session import Session

router = APIRouter(include_in_schema=False)
COOKIE = "splitverify_dashboard"


class NoSuchAsset(Refusal):
    status = 404


def _dashboard(request: Request) -> Dashboard:
    """The app's dashboard, after its token check (when the operator set one)."""
    dashboard: Dashboard = request.app.state.dashboard
    if dashboard.token is None:
        return dashboard
    given = (request.query_params.get("token") or bearer_token(request.headers)
             or request.cookies.get(COOKIE))
    if given is None:
        raise MissingToken("this server's dashboard needs its token (serve --dashboard-token): "
                           "open /?token=<token> once, or send Authorization: Bearer <token>")
    if not secrets.compare_digest(given.encode(), dashboard.token.encode()):
        raise WrongToken("wrong dashboard token (the one `serve --dashboard-token` was given)")
    return dashboard


def _answer(request: Request, title: str, live_part: str) -> HTMLResponse:
    """The page, or only its live part (``?part=main``); a token given in the address is kept
    in a cookie, so the page's updates and links need not carry it."""
    html = live_part if request.query_params.get("part") == "main" else render.page(title,
                                                                                      live_part)
    response = HTMLResponse(html, headers={"Cache-Control": "no-store"})
    token = request.query_params.get("token")
    if token is not None:
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
    return response


def _session(service, session_id: int) -> Session:
    session = service.sessions.get(session_id)
    if session is None:                  # also a session still being made
        raise NoSuchSession(f"no session {session_id} on this server (it ended, expired, or "
                            "never existed): see / for the sessions it holds")
    return session


@router.get("/", response_class=HTMLResponse)
def sessions_page(request: Request, service: Service):
    dashboard = _dashboard(request)
    held = [s for s in list(service.sessions.values()) if s is not None]
    dashboard.events.keep_only({s.id for s in held})
    rows = sorted((view.summary(s) for s in held), key=lambda row: -row["steps"])
    return _answer(request, "splitverify · sessions",
                   render.index(service.identity.address, rows))


@router.get("/dashboard/sessions/{session_id}", response_class=HTMLResponse)
def session_page(session_id: SessionId, request: Request, service: Service):
    dashboard = _dashboard(request)
    shown = view.session_view(_session(service, session_id), dashboard.events,
                              service.identity.address)
    return _answer(request, f"splitverify · session {shown['id_hex'][:12]}",
                   render.session(shown))


@router.get("/dashboard/sessions/{session_id}/view.json")
def session_values(session_id: SessionId, request: Request, service: Service) -> dict:
    dashboard = _dashboard(request)
    return view.session_view(_session(service, session_id), dashboard.events,
                             service.identity.address)


@router.get("/dashboard/assets/{name}")
def asset(name: str) -> Response:
    found = assets.asset(name)
    if found is None:
        raise NoSuchAsset(f"no dashboard file {name!r} (there are: dashboard.js, "
                            f"dashboard.css, {', '.join(assets.UPLOT_FILES)})")
    content, media_type = found
    return Response(content, media_type=media_type,
                    headers={"Cache-Control": "public, max-age=3600"})
