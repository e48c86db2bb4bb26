"""Content-addressed artifact cache: an entry is built once, atomically, under a lock.

Layout: ``$SPLITVERIFY_CACHE/<kind>/<key>/`` holds the artifacts and ``manifest.json``; an
entry exists only once its manifest does (it is renamed into place complete). Every build and
every hit is appended to ``events.jsonl``, the cache's record, so callers (and tests) can see
whether work was done without timing anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from ..errors import CacheError

ENV_CACHE = "SPLITVERIFY_CACHE"


def default_cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("splitverify"))


def digest(material: object) -> str:
    """sha256 of a JSON-serialisable description (canonical form)."""
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    kind: str
    key: str
    path: Path
    built: bool  # True when this call did the work

    @property
    def manifest(self) -> dict:
        return json.loads((self.path / "manifest.json").read_text())


class ArtifactCache:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot create the cache folder {self.root}: {exc}; set "
                             f"${ENV_CACHE} to a writable folder") from exc

    def _record(self, event: str, kind: str, key: str, seconds: float = 0.0) -> None:
        line = json.dumps({"event": event, "kind": kind, "key": key, "at": time.time(),
                           "seconds": round(seconds, 4), "pid": os.getpid()})
        with FileLock(str(self.root / "events.lock")):
            with open(self.root / "events.jsonl", "a") as fh:
                fh.write(line + "\n")

    def events(self, kind: str | None = None, key: str | None = None) -> list[dict]:
        path = self.root / "events.jsonl"
        if not path.exists():
            return []
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [r for r in rows if (kind is None or r["kind"] == kind)
                and (key is None or r["key"] == key)]

    def lookup(self, kind: str, key: str) -> Path | None:
        path = self.root / kind / key
        return path if (path / "manifest.json").is_file() else None

    def get_or_build(self, kind: str, key: str, build: Callable[[Path], dict],
                     ) -> CacheEntry:
        """Return the entry for (kind, key), running ``build(tmpdir)`` first if it is absent.

        ``build`` writes its files into tmpdir and returns metadata for the manifest. Concurrent
        callers for the same key wait on one lock; the loser finds the entry built.
        """
        final = self.root / kind / key
        final.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(final.parent / f"{key}.lock")):
            if (final / "manifest.json").is_file():
                self._record("hit", kind, key)
                return CacheEntry(kind, key, final, built=False)
            if final.exists():  # a crashed build left debris without a manifest
                shutil.rmtree(final)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}.", dir=final.parent))
            started = time.perf_counter()
            try:
                meta = build(tmp)
                manifest = {"kind": kind, "key": key, "created": time.time(), **(meta or {})}
                (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
                tmp.rename(final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self._record("build", kind, key, time.perf_counter() - started)
            return CacheEntry(kind, key, final, built=True)
