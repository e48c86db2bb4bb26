"""One session as the server holds it: the party, its token's digest, the key ceremony and the
session's powers of tau as typed records (stored as the same JSON as before: ``as_record``)."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field

from splitverify.protocol import ServerParty
from splitverify.protocol.wire import StopRecord
from .refusals import CeremonyUnfinished, NoSuchCeremony

PTAU_RECORD = "_ptau"            # the session's ptau, stored beside its circuits' key records
FINAL_KEY_FIELDS = ("blake2b", "transcript", "client_signature")   # written with the final key


@dataclass
class KeyCeremony:
    """One circuit's key ceremony, the server's side: its contribution, then the client's
    final key once accepted."""
    server: str                          # the key with the server's contribution (a path)
    server_hash: str                     # the hash of that contribution
    server_signature: str | None = None  # the server's signature of it
    final: str | None = None             # the session's final key (a path), once accepted
    blake2b: str | None = None
    transcript: list[dict] | None = None  # the key's contributions
    client_signature: str | None = None   # the client's signature of its contribution
    # a finished key reused from this earlier session of the same two identities (issue 19):
    # no ceremony ran for it in this session; the signatures above were made for that session
    reused_from: int | None = None

    def as_record(self) -> dict:
        record = asdict(self)
        if self.final is None:
            for name in FINAL_KEY_FIELDS:
                del record[name]
        return record


@dataclass
class SessionPtau:
    """The session's powers of tau: its transcript ``record`` once known; a two-party phase 1
    waiting for the client's contribution has ``ready=False`` and the server's file. Fields
    never set are not stored (an absent ``ready`` means nothing is waited for)."""
    ready: bool | None = None
    client: str | None = None            # the client's party id (two-party phase 1)
    power: int | None = None
    server_file: str | None = None       # the server's contribution to the phase 1
    server_hash: str | None = None
    file: str | None = None              # the prepared ptau, once the phase 1 is done
    blake2b: str | None = None
    record: dict | None = None

    @property
    def waits_for_client(self) -> bool:
        return self.ready is False

    def as_record(self) -> dict:
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass
class Session:
    token_sha256: str
    request: dict                                # the SessionCreate body
    party: ServerParty
    stopped: StopRecord | None = None
    # the last answer per message kind, for a client re-sending a message whose answer was lost
    replies: dict[str, dict] = field(default_factory=dict)
    keys: dict[str, KeyCeremony] = field(default_factory=dict)
    saved_entries: int = 0                       # transcript entries already in the store
    ptau: SessionPtau = field(default_factory=SessionPtau)
    # one message at a time per session: two at once would both see the same step pending
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    last_request: float = field(default_factory=time.time)     # for idle expiry
    removed: bool = False                        # deleted or expired: nothing more is stored
    # kind → why a key the client offered to reuse was not taken (the creation's answer only)
    reuse_declined: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return self.party.session_id

    @property
    def keys_ready(self) -> bool:
        return not self.ptau.waits_for_client and all(
            ceremony.final for ceremony in self.keys.values())

    @property
    def reused_keys(self) -> dict[str, int]:
        """Kind → the session whose finished key this one reuses."""
        return {kind: ceremony.reused_from for kind, ceremony in self.keys.items()
                if ceremony.reused_from is not None}

    def stored_keys(self) -> dict[str, dict]:
        """The key records and the ptau record, as the store keeps them."""
        return {**{kind: ceremony.as_record() for kind, ceremony in self.keys.items()},
                PTAU_RECORD: self.ptau.as_record()}

    def require_keys(self) -> None:
        """Refuse (425) while the session's keys are not final."""
        if self.keys_ready:
            return
        if self.ptau.waits_for_client:
            raise CeremonyUnfinished("the two-party phase 1 is not finished: the client's "
                                     "contribution is missing (PUT /sessions/{id}/phase1)")
        missing = sorted(kind for kind, ceremony in self.keys.items() if not ceremony.final)
        raise CeremonyUnfinished(f"the key ceremony is not finished: {missing} still need the "
                                 "client's contribution (PUT /sessions/{id}/keys/{kind})")

    def key_ceremony(self, kind: str) -> KeyCeremony:
        if kind not in self.keys:
            raise NoSuchCeremony(f"no key ceremony for {kind!r} in this session (circuits: "
                                 f"{sorted(self.keys) or 'none: keys are the operator’s'})")
        return self.keys[kind]

    def two_party_phase1(self) -> SessionPtau:
        if self.ptau.server_file is None:
            raise NoSuchCeremony("no two-party phase 1 in this session (the server uses "
                                 f"{(self.ptau.record or {}).get('origin', 'its own keys')})")
        return self.ptau
