"""The parties' identities: each party signs what it sends, so a transcript shows what *each*
party committed to (whoever holds a transcript could otherwise have written both sides of it).

An identity is an Ethereum account key (``eth_account``): the same identity can own ledger
slots. Its public half, the address, is pinned when the session is created — the client sends
its address in the session-creation request, the server answers with its own — and every
signature is checked against the pinned address of the party that should have made it.

What is signed is a canonical encoding (a JSON array with a fixed order, nothing left to a
serializer's choice) of one record, as an EIP-191 personal message:

* a statement: ``["statement", session, step, kind, [public values in the circuit's order],
  proof hex or null]``;
* a ceremony contribution: ``["contribution", session, circuit, index, name, hash]``;
* the end of a session: ``["end", session, steps]``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address, is_hex_address, to_checksum_address

from .circuitgen import PUBLIC_SIGNALS
from .circuitgen.statements import aggregate_signal_names, signal_names
from .errors import InputError

DOMAIN = "splitverify/v1"


def _payload(*fields) -> bytes:
    return json.dumps([DOMAIN, *fields], separators=(",", ":"), ensure_ascii=True).encode()


def statement_payload(session_id: int, step: int, kind: str, public: dict[str, int],
                      proof: str | None) -> bytes:
    """A statement with its proof (or none), the public values in the circuit's fixed order."""
    names = (signal_names(kind, "labelTable" in public) if kind in PUBLIC_SIGNALS else None)
    if names is None or set(public) != set(names):
        raise InputError(f"cannot sign a {kind} statement with public inputs {sorted(public)}")
    return _payload("statement", session_id, step, kind, [public[n] for n in names], proof)


def round_payload(session_id: int, after_step: int, round_: int, slot: int,
                  public: dict[str, int], proof: str | None) -> bytes:
    """The aggregator's Aggregate statement (and proof) of a round of averaged client halves
    as sent to one session: its place ``slot`` in the round, which ended with ``after_step``."""
    clients = sum(name.startswith("clientWeights") for name in public)
    names = aggregate_signal_names(clients) if clients >= 2 else ()
    if set(public) != set(names):
        raise InputError(f"cannot sign an aggregate statement with public inputs "
                         f"{sorted(public)}")
    return _payload("round", session_id, after_step, round_, slot, [public[n] for n in names],
                    proof)


def contribution_payload(session_id: int, circuit: str, index: int, name: str,
                         contribution_hash: str) -> bytes:
    return _payload("contribution", session_id, circuit, index, name, contribution_hash)


def end_payload(session_id: int, steps: int) -> bytes:
    return _payload("end", session_id, steps)


ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"


def check_address(address: object, whose: str) -> str:
    """An Ethereum address in its checksummed form (one in mixed case must carry a valid
    EIP-55 checksum), or an InputError naming whose it was meant to be."""
    one_case = isinstance(address, str) and address[2:] in (address[2:].lower(),
                                                            address[2:].upper())
    if not (isinstance(address, str) and is_hex_address(address)
            and (one_case or is_checksum_address(address))):
        raise InputError(f"{whose} identity {address!r} is not an Ethereum address (0x followed "
                         "by 40 hex digits; in mixed case, with a valid EIP-55 checksum)")
    return to_checksum_address(address)


def recover(payload: bytes, signature: str | None) -> str | None:
    """The address that signed ``payload``; None for a missing or malformed signature."""
    if not signature:
        return None
    try:
        return Account.recover_message(encode_defunct(primitive=payload),
                                       signature=bytes.fromhex(signature.removeprefix("0x")))
    except (ValueError, TypeError):
        return None


def signed_by(address: str | None, payload: bytes, signature: str | None) -> bool:
    return address is not None and recover(payload, signature) == address


class Identity:
    """One party's signing key."""

    def __init__(self, private_key: bytes):
        self._account = Account.from_key(private_key)

    @property
    def private_key(self) -> bytes:
        """The key itself, for the party's own ledger account: the identity that signs a
        session's messages is the one that owns its ledger slots."""
        return bytes(self._account.key)

    @classmethod
    def generate(cls) -> "Identity":
        """A fresh key, for one process (``:memory:`` servers, clients without a state folder)."""
        return cls(os.urandom(32))

    @classmethod
    def load_or_create(cls, path: str | Path) -> "Identity":
        """The key in ``path`` (hex), made and saved there (readable by its owner only) if the
        file does not exist yet."""
        path = Path(path)
        if path.exists():
            try:
                return cls(bytes.fromhex(path.read_text().strip()))
            except (ValueError, OSError) as exc:
                raise InputError(f"{path} does not hold a splitverify identity key (64 hex "
                                 f"digits): {exc}; restore it or delete it to make a new identity"
                                 ) from exc
        identity = cls.generate()
        try:
            identity.save(path)
        except FileExistsError:          # another process made it meanwhile: that one is ours
            return cls.load_or_create(path)
        return identity

    def save(self, path: str | Path) -> None:
        """Write the key to a new file ``path``, readable by its owner only."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.private_key.hex())

    @property
    def address(self) -> str:
        return self._account.address

    def sign(self, payload: bytes) -> str:
        return self._account.sign_message(encode_defunct(primitive=payload)).signature.hex()

    def sign_statement(self, session_id: int, step: int, kind: str, public: dict[str, int],
                       proof: str | None) -> str:
        return self.sign(statement_payload(session_id, step, kind, public, proof))
