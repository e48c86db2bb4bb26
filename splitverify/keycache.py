"""Each party's cache of finished ceremony keys, for reuse by a later session between the SAME
two identities (issue 19).

Why reuse is sound: a finished key has the server's contribution and then the client's, and
each party knows it contributed (it drew its factor and verified the final key itself) — so
neither alone knows δ, whichever session uses the key. The session id and the step are public
inputs of every proof, so a proof made in one session never verifies in another.

An entry is keyed by (server identity, client identity, circuit, ptau, circuit kind, holder):
the holder is the party that wrote it (``"server"`` or ``"client"``: both parties of the demo
share one cache root, and each must rely on its own verification only). It holds the final
``.zkey``, its blake2b, the key's contributions (hashes), the two signed contributions and the
session they were signed for. A party writes its entry only after it has itself verified the
final key (:mod:`splitverify.keyexchange`'s checks), never from what the other side claims; a
later ceremony of the same pair and circuit replaces it. Entries live in
``$SPLITVERIFY_CACHE/ceremony/`` (beside the pair's phase 1, ``phase1/``), written atomically
(a finished folder renamed into place under a lock).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from . import zk
from .errors import IntegrityError
from .zk.cache import ArtifactCache, digest

FOLDER = "ceremony"
HOLDERS = ("server", "client")


@dataclass(frozen=True)
class KeyPair:
    """What an entry is shared between and made for."""
    server: str             # the server's identity address
    client: str             # the client's identity address
    circuit: str            # the compiled circuit's cache key
    ptau_blake2b: str       # the ptau its initial key came from
    kind: str               # client_forward, server_step or client_backward

    @classmethod
    def of(cls, server: str, client: str, start: zk.CircuitKey, kind: str) -> "KeyPair":
        """``start``: the circuit's initial key (its circuit and ptau)."""
        return cls(server, client, start.circuit.key, start.ptau_blake2b, kind)

    def entry_key(self, holder: str) -> str:
        return digest({"ceremony": "finished", "holder": holder, **asdict(self)})


@dataclass(frozen=True)
class FinishedKey:
    """A finished key as its holder verified it."""
    path: Path                        # the final .zkey
    pair: KeyPair
    blake2b: str
    origin_session: int               # the session whose ceremony made it
    transcript: list[dict]            # its contributions ({index, name, kind, hash})
    signatures: dict[str, str]        # contributor name → its signature, for origin_session
    url: str | None = None            # where the holder reached the other party (a hint only)

    def check_integrity(self) -> None:
        actual = zk.ceremony.blake2b_file(self.path)
        if actual != self.blake2b:
            raise IntegrityError(f"the cached key {self.path} has blake2b {actual[:16]}…, its "
                                 f"record says {self.blake2b[:16]}…: it was changed since it "
                                 "was verified")


def _folder(cache: ArtifactCache) -> Path:
    return cache.root / FOLDER


def store(cache: ArtifactCache, holder: str, pair: KeyPair, key: zk.CircuitKey,
          origin_session: int, signatures: dict[str, str], url: str | None = None
          ) -> FinishedKey:
    """Keep ``key`` (verified by ``holder`` itself) for later sessions of ``pair``; replaces
    the pair's earlier key of this circuit. Written beside, then renamed into place. ``url``:
    where the client reached the server (lets it find its keys for a server it has not yet
    asked for its identity; the server's answer decides)."""
    if holder not in HOLDERS:
        raise ValueError(f"holder must be one of {HOLDERS}, not {holder!r}")
    root = _folder(cache)
    root.mkdir(parents=True, exist_ok=True)
    name = pair.entry_key(holder)
    final = root / name
    record = {"holder": holder, **asdict(pair), "blake2b": key.blake2b,
              "origin_session": origin_session,
              "transcript": [asdict(c) for c in key.transcript], "signatures": signatures,
              "url": url}
    with FileLock(str(root / f"{name}.lock")):
        tmp = Path(tempfile.mkdtemp(prefix=f".{name[:12]}.", dir=root))
        try:
            _link_or_copy(key.zkey, tmp / "final.zkey")
            (tmp / "manifest.json").write_text(json.dumps(record, indent=2))
            if final.exists():
                old = Path(tempfile.mkdtemp(prefix=f".old-{name[:12]}.", dir=root))
                os.replace(final, old / "entry")
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return _finished(final, record)


def lookup(cache: ArtifactCache, holder: str, pair: KeyPair) -> FinishedKey | None:
    """The holder's finished key for ``pair``, or None (its bytes are not checked here:
    :meth:`FinishedKey.check_integrity`)."""
    folder = _folder(cache) / pair.entry_key(holder)
    if not (folder / "manifest.json").is_file():
        return None
    return _finished(folder, json.loads((folder / "manifest.json").read_text()))


def held_by_client(cache: ArtifactCache, client: str) -> list[FinishedKey]:
    """Every finished key the client ``client`` keeps, any server, circuit or ptau (newest
    first): what it can offer before it knows the session's ptau."""
    root = _folder(cache)
    found = []
    for manifest in root.glob("*/manifest.json") if root.is_dir() else ():
        record = json.loads(manifest.read_text())
        if (record.get("holder"), record.get("client")) == ("client", client):
            found.append((manifest.stat().st_mtime, _finished(manifest.parent, record)))
    return [key for _, key in sorted(found, key=lambda pair: -pair[0])]


def forget(key: FinishedKey) -> None:
    """Remove an entry that failed its integrity check (a later ceremony writes a new one)."""
    shutil.rmtree(key.path.parent, ignore_errors=True)


def use_in(key: FinishedKey, path: Path) -> Path:
    """The cached key at ``path`` (a session's own key folder), so that a later ceremony that
    replaces the cache entry cannot change a session's key under it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    _link_or_copy(key.path, path)
    return path


def _finished(folder: Path, record: dict) -> FinishedKey:
    pair = KeyPair(record["server"], record["client"], record["circuit"],
                   record["ptau_blake2b"], record["kind"])
    return FinishedKey(folder / "final.zkey", pair, record["blake2b"],
                       int(record["origin_session"]), record["transcript"],
                       record["signatures"], record.get("url"))


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where both lie on one file system (keys are large), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
