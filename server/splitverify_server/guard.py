"""What keeps hostile traffic cheap for the server: a bound on how deeply a JSON body may nest,
checked on the raw bytes before any parser recurses into it; the bearer scheme read as RFC 7235
says (case-insensitive); a per-address rate of session creation; the cost model's estimate of a
spec's circuits, so that a spec too large to set up is refused before anything is compiled; and
error text without the server's file paths."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from splitverify.circuitgen.generator import KINDS, cost_breakdown
from splitverify.model import SplitSpec

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# every opening bracket as "[", every closing one as "]", anything else dropped: nesting depth
# does not depend on the bracket's kind (a mismatched pair is refused by the parser anyway)
_BRACKETS_ONLY = bytes.maketrans(b"{}", b"[]")
_NOT_A_BRACKET = bytes(c for c in range(256) if c not in b"[]{}")


def nesting_exceeds(body: bytes, limit: int) -> bool:
    """Does the JSON text ``body`` nest arrays and objects more than ``limit`` deep (or do its
    brackets not balance)? Linear and without recursion: strings are cut out, then everything
    but the brackets; the depth is then the running sum of +1 per "[" and −1 per "]"."""
    brackets = _JSON_STRING.sub(b"", body).translate(_BRACKETS_ONLY, _NOT_A_BRACKET)
    if not brackets:
        return False
    if b"[" * (limit + 1) in brackets:
        return True
    opened = np.frombuffer(brackets, dtype=np.uint8) == ord("[")
    depth = np.cumsum(np.where(opened, 1, -1).astype(np.int32), dtype=np.int32)
    return bool(depth.max() > limit or depth.min() < 0 or depth[-1] != 0)


class NestingLimit:
    """ASGI middleware: a JSON request body nested deeper than ``limit`` is answered 400 before
    the app parses it (JSON parsers recurse once per level). Runs inside ``BodyLimit``, so the
    body it reads is already bounded; an uploaded key (``is_binary``) is not JSON and passes."""

    def __init__(self, app: ASGIApp, limit: int, is_binary: Callable[[Scope], bool],
                 refuse: Callable[[int, str], ASGIApp]):
        self.app, self.limit, self.is_binary, self.refuse = app, limit, is_binary, refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH") \
                or self.is_binary(scope):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if nesting_exceeds(body, self.limit):
            await self.refuse(400, f"the JSON body nests deeper than {self.limit} levels (or its "
                                   "brackets do not balance); no request of this server needs "
                                   "more than a few")(scope, receive, send)
            return
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()
        await self.app(scope, replay, send)


def bearer_token(headers: Headers) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; the scheme's case does not
    matter (RFC 7235 §2.1)."""
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class CreationRate:
    """At most ``count`` session creations per source address in any ``window`` seconds
    (a sliding window: the timestamps of the last ``count`` creations per address)."""

    def __init__(self, count: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.count, self.window, self.clock = count, window, clock
        self._recent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, address: str) -> float:
        """0 when ``address`` may create a session now (and the creation is counted), else the
        seconds until it may."""
        now = self.clock()
        with self._lock:
            if len(self._recent) > 10_000:       # forget addresses whose window has passed
                self._recent = {a: q for a, q in self._recent.items()
                                if q and now - q[-1] < self.window}
            recent = self._recent.setdefault(address, deque(maxlen=self.count))
            if len(recent) == self.count and now - recent[0] < self.window:
                return self.window - (now - recent[0])
            recent.append(now)
            return 0.0


@lru_cache(maxsize=256)
def largest_circuit(spec: SplitSpec, label_table_depth: int = 0) -> tuple[str, int]:
    """The spec's largest circuit and its constraints, by the generator's cost model (checked
    against compiled circuits by tests/core/circuitgen/test_circuit_costs.py): nothing is
    compiled. ``label_table_depth``: the session reads its labels from a table that deep."""
    costs = {kind: sum(cost_breakdown(spec, kind, label_table_depth).values()) for kind in KINDS}
    kind = max(costs, key=costs.__getitem__)
    return kind, costs[kind]


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"]+/)+(?=[^\s/'\"]+)")


def without_paths(message: str) -> str:
    """``message`` with every absolute file path cut to its file name: a client is not told
    where the server keeps its files."""
    return _ABSOLUTE_PATH.sub("", message)
