"""The request-body limit (ASGI middleware, outside the app): a body over the limit is answered
413 before anything reads it; an uploaded key has its own, larger limit, for the session's
owner only."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from splitverify.limits import Limits
from .refusals import error_response

KEY_PATH = re.compile(r"/sessions/([^/]+)/(?:keys/[^/]+|phase1)")
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class BodyLimit:
    """ASGI middleware: a body over the limit is answered 413 before the app reads it — from
    its Content-Length, or, for a body sent without one (chunked), once the bytes read pass the
    limit (so at most the limit is ever held). An uploaded key has its own, larger limit, for
    the session's owner only (``key_owner(scope)``: the request carries the session's token)."""

    def __init__(self, app: ASGIApp, limits: Limits,
                 key_owner: Callable[[Scope], bool] = lambda _scope: True):
        self.app, self.limits, self.key_owner = app, limits, key_owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_key = is_key_upload(scope) and self.key_owner(scope)
        limit = self.limits.key_bytes if is_key else self.limits.body_bytes
        hint = (" (a key upload may be larger only with the session's bearer token)"
                if is_key_upload(scope) and not is_key else "")
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                await error_response(413, f"request body of {length} bytes exceeds {limit}{hint}")(
                    scope, receive, send)
                return
        elif scope["method"] in METHODS_WITH_BODY:
            body = await _read_at_most(receive, limit)
            if body is None:
                await error_response(413, f"request body exceeds {limit} bytes{hint}")(
                    scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)


def is_key_upload(scope: Scope) -> bool:
    return scope["method"] == "PUT" and KEY_PATH.fullmatch(scope["path"]) is not None


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is longer than ``limit``."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        size += len(message.get("body", b""))
        if size > limit:
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app a body already read, then the real one's messages."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replayed

