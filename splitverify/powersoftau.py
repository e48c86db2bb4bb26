"""Which powers of tau a client and a server share, and the two-party phase 1 that makes one.

A session's keys come from a ptau both parties hold. Three origins:

* ``two-party`` (``serve`` / ``train`` by default): the server starts a phase 1 (its τ, α, β),
  the client checks it and contributes its own factors, the server checks that contribution;
  both prepare phase 2 themselves (same bytes). Neither party alone knows τ, α, β. The result is
  cached on each side per pair of parties (both identity addresses) and power, and reused by every later
  session of that pair whose circuits fit.
* ``published``: a prepared ptau file both sides hold (``--ptau FILE``), compared by sha256.
* ``development``: each circuit's insecure ptau made on one machine (``--insecure-dev-ptau``,
  the one-machine demo and tests): whoever made it knows τ and can forge any proof.

Every session records which one it used (:func:`ptau_record`, the transcript's ``ptau``); both
sides refuse to go on when theirs differ.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import zk
from .circuitgen import KINDS, SplitCircuits
from .errors import InputError, SetupError
from .identity import check_address
from .zk import phase1
from .zk.cache import ArtifactCache, digest
from .zk.ceremony import initial_key

ORIGINS = ("development", "published", "two-party")
# Phase 1 is made at least this large, so that a pair's next sessions (other models, batches)
# reuse it rather than run another.
MIN_TWO_PARTY_POWER = 8

DEV_REFUSED = ("the development powers of tau is made by one party, which then knows τ and can "
               "forge any proof the other accepts; across machines use the two-party phase 1 "
               "(the default) or a published ptau (--ptau FILE). Pass --insecure-dev-ptau only "
               "for a one-machine test")


@dataclass(frozen=True)
class PtauPolicy:
    """What a party was told to use: ``origin`` one of ORIGINS; ``file`` for a published one."""
    origin: str
    file: zk.PtauFile | None = None

    def __post_init__(self):
        if self.origin not in ORIGINS:
            raise InputError(f"unknown ptau origin {self.origin!r}; one of {list(ORIGINS)}")
        if (self.origin == "published") != (self.file is not None):
            raise InputError("a published ptau needs its file, and only a published one has one")

    @classmethod
    def of_options(cls, ptau: Path | None, insecure_dev_ptau: bool) -> "PtauPolicy":
        """The CLI's ``--ptau FILE`` / ``--insecure-dev-ptau`` (neither: two-party)."""
        if ptau is not None and insecure_dev_ptau:
            raise InputError("--ptau and --insecure-dev-ptau exclude each other: a published "
                             "ptau is the secure choice, drop --insecure-dev-ptau")
        if ptau is not None:
            return cls("published", zk.PtauFile.open(ptau))
        return cls("development") if insecure_dev_ptau else cls("two-party")

    def announce(self) -> dict:
        """What a party tells the other before keys are made."""
        return {"origin": self.origin,
                "sha256": sha256_file(self.file.path) if self.file is not None else None}


_SHA256_SEEN: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime): every session records its ptau."""
    stat = Path(path).stat()
    seen = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if seen not in _SHA256_SEEN:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _SHA256_SEEN[seen] = h.hexdigest()
    return _SHA256_SEEN[seen]


def ptau_record(ptau: zk.PtauFile, origin: str, name: str | None = None) -> dict:
    """The transcript's ``ptau`` field."""
    return {"sha256": sha256_file(ptau.path), "power": ptau.power, "origin": origin,
            "name": name}


def record_of(circuits: SplitCircuits, origin: str | None = None) -> dict:
    """The ``ptau`` record of a session's circuits: their ptau, or (development) the largest
    circuit's development ptau."""
    if circuits.ptau is not None:
        known = circuits.ptau.path.name in zk.ceremony.KNOWN_PTAU_BLAKE2B
        return ptau_record(circuits.ptau, origin or "published",
                           circuits.ptau.path.name if known or origin != "two-party" else None)
    kind = max(KINDS, key=lambda k: circuits.circuit(k).info.ptau_power)
    dev = initial_key(circuits.circuit(kind), None, circuits.cache).zkey.parent / "dev.ptau"
    return {"sha256": sha256_file(dev), "power": circuits.circuit(kind).info.ptau_power,
            "origin": "development", "name": None}


def record_in(transcript, record: dict) -> None:
    """Write the session's powers of tau into its transcript. A shared one (published,
    two-party) is every key's: each key's origin names it too. The development setup makes one
    ptau per circuit, which the keys' origins already record (and the top-level record only
    where they share one)."""
    if record.get("origin") == "development":
        return
    transcript.ptau = dict(record)
    for origin in transcript.key_origin.values():
        origin["ptau"] = dict(record)


def check_same(mine: dict, theirs: dict, who: str) -> None:
    """Refuse a session whose two parties use different powers of tau."""
    if mine.get("origin") != theirs.get("origin") or (
            mine.get("sha256") and theirs.get("sha256") and mine["sha256"] != theirs["sha256"]):
        raise SetupError(
            f"the {who} uses the powers of tau {_describe(theirs)}, this party "
            f"{_describe(mine)}: both must use the same one (the same --ptau file on both "
            "sides, or neither for the two-party phase 1); nothing was set up"
            + (f". Why not development: {DEV_REFUSED}" if "development" in
               (mine.get("origin"), theirs.get("origin")) else ""))


def _describe(record: dict) -> str:
    sha = record.get("sha256")
    return f"{record.get('origin')}" + (f" (sha256 {sha[:16]}…)" if sha else "")


def needed_power(circuits: SplitCircuits) -> int:
    return max(circuits.circuit(kind).info.ptau_power for kind in KINDS)


# --- party identity -----------------------------------------------------------------------------


def check_party_id(value: object, what: str) -> str:
    """A party of the two-party phase 1 is its identity key's address (splitverify.identity):
    the phase 1 a pair shares is cached under both addresses, so it is reused by every later
    session of the same two keys and never by a party that merely claims an id."""
    return check_address(value, what)


# --- the two-party phase 1, cached per pair ---------------------------------------------------


def _pair_key(server: str, client: str, power: int) -> str:
    return digest({"phase1": "two-party", "server": server, "client": client, "power": power})


def cached(cache: ArtifactCache, server: str, client: str, power: int
           ) -> zk.PtauFile | None:
    """The pair's prepared phase 1 of the smallest power ≥ ``power`` this party holds."""
    for p in range(power, phase1.MAX_POWER + 1):
        folder = cache.lookup("phase1", _pair_key(server, client, p))
        if folder is not None:
            meta = json.loads((folder / "manifest.json").read_text())
            return zk.PtauFile.open(folder / "prepared.ptau", expected_blake2b=meta["blake2b"])
    return None


def _store(cache: ArtifactCache, server: str, client: str, ptau: phase1.Ptau, *,
           replace: bool) -> zk.PtauFile:
    key = _pair_key(server, client, ptau.power)
    stale = cache.lookup("phase1", key)
    if stale is not None and replace:     # an earlier attempt the other side never finished
        shutil.rmtree(stale)

    def build(out: Path) -> dict:
        path = phase1.prepare_phase2(ptau, out / "prepared.ptau")
        return {"server": server, "client": client, "power": ptau.power,
                "blake2b": zk.ceremony.blake2b_file(path), "sha256": sha256_file(path),
                "contributions": [c.hash for c in ptau.contributions]}

    entry = cache.get_or_build("phase1", key, build)
    return zk.PtauFile.open(entry.path / "prepared.ptau",
                            expected_blake2b=entry.manifest["blake2b"])


def server_start(server: str, power: int, folder: Path) -> tuple[Path, str]:
    """The server's phase 1: its powers of tau (written before anyone can fetch it) and the
    hash of its contribution."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "phase1_server.ptau"
    record = phase1.start(power, f"server {server}", path)
    return path, record.hash


def client_contribute(cache: ArtifactCache, server: str, client: str, data: bytes,
                      min_power: int, folder: Path) -> tuple[bytes, zk.PtauFile]:
    """The client's phase 1: check the server's powers of tau (one contribution, consecutive
    powers, at least ``min_power``), add ours, prepare phase 2 and cache it for the pair.
    Returns the file to upload and the prepared ptau."""
    folder.mkdir(parents=True, exist_ok=True)
    theirs = folder / "phase1_server.ptau"
    theirs.write_bytes(data)
    received = phase1.verify(theirs, "server's powers of tau")
    if len(received.contributions) != 1:
        raise SetupError(f"the server's powers of tau holds {len(received.contributions)} "
                         "contributions, exactly 1 (the server's) expected: refused")
    if received.power < min_power:
        raise SetupError(f"the server's powers of tau has power {received.power}, the session's "
                         f"circuits need {min_power}: refused")
    mine = folder / "phase1_client.ptau"
    phase1.contribute(theirs, f"client {client}", mine)
    final = phase1.Ptau.read(mine)
    return mine.read_bytes(), _store(cache, server, client, final, replace=True)


def server_accept(cache: ArtifactCache, server: str, client: str, server_file: Path,
                  data: bytes, folder: Path) -> zk.PtauFile:
    """The client's phase 1, checked: our file with exactly one more contribution (not a copy of
    ours) whose points follow ours by the factors it proves it knows. Prepared and cached."""
    path = folder / "phase1_client.ptau"
    path.write_bytes(data)
    ours = phase1.Ptau.read(server_file)
    received = phase1.verify(path, "client's powers of tau")
    mine = ours.contributions[0]
    if received.power != ours.power:
        raise SetupError(f"the client's powers of tau has power {received.power}, ours "
                         f"{ours.power}: refused")
    if len(received.contributions) != 2 or received.contributions[0] != mine:
        names = [c.name for c in received.contributions]
        raise SetupError(f"the client's powers of tau holds the contributions {names}; ours "
                         "followed by exactly one of the client's is expected (a party that "
                         "skips its contribution adds nothing secret): refused")
    theirs = received.contributions[1]
    reused = {getattr(mine.key, f).g1_sx for f in phase1.FACTORS} & {
        getattr(theirs.key, f).g1_sx for f in phase1.FACTORS}
    unchanged = [what for what in ("tau_g1", "alpha_g1", "beta_g1")
                 if getattr(theirs, what) == getattr(mine, what)]
    if reused or unchanged:
        raise SetupError("the client's contribution re-uses the server's key or points: it adds "
                         "no secret of its own; refused")
    return _store(cache, server, client, received, replace=True)
