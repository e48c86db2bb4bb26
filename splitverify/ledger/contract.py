"""The Ethereum ledger of split-learning steps: a web3.py client of ``contracts/SplitLedger.sol``.

API (what the runtime's ``--chain`` calls)::

    from splitverify.ledger import Commitments, Ledger

    with Ledger.open("embedded") as ledger:            # or "anvil", or "http://host:port"
        ledger.deploy()                                 # or Ledger.open(..., address="0x…")
        client = ledger.with_account(client_key)        # each party sends from its own account
        server = ledger.with_account(server_key)
        verifier = client.deploy_verifier("server_step", key)   # zk.CircuitKey or its vk
        terms = SessionTerms.of(session, client.account, server.account,
                                keys={"server_step": vk}, verifiers={"server_step": verifier})
        client.open_session(terms, server.sign_terms(terms))      # both parties agree
        client.record(session, step, "client_forward",
                      Commitments(message=m, weights_before=w))          # -> Receipt
        server.record_verified(session, step, "server_step", proof, public)  # -> Receipt
        ledger.entry(session, step, "server_step", party=client.account)  # -> Entry | None
        ledger.check_verifier(session, "server_step", vk, party=client.account)
        ledger.events(session)                          # -> list[StepEvent], chain order
        ledger.receipts                                 # every transaction sent, as Receipt

* ``Ledger.open(backend, *, address=None, private_key=None)`` -- ``embedded``: an in-process
  chain (eth-tester on py-evm, the default; nothing to start; it lives as long as the Ledger
  object, so its entries are gone after close); ``anvil``: the anvil
  binary of the pinned npm toolchain, started on a free loopback port and stopped by ``close()``
  (ToolchainError when the binary is missing); ``http://…``/``https://…``: any node.
  Transactions come from the node's first unlocked account, or from ``private_key`` (signed
  locally); a node with neither gives a connection that only reads (sending raises
  ``LedgerError``).
* ``deploy() -> Receipt`` deploys SplitLedger (its deployer has no powers over it);
  ``with_account(private_key) -> Ledger`` the same connection and contract, sending from another
  account (``fund(address)`` gives a fresh account gas money from the node's first account).
* Sessions are owned (see SplitLedger.sol): ``open_session(terms, counterpart_signature)`` opens
  a session for its two parties, sent by one of them with the other's ``sign_terms(terms)``.
  ``SessionTerms`` carry per kind the hash of the session's verification key
  (``keyed_verifier.verification_key_hash``), the verifier contract bound to it
  (``deploy_verifier(kind, key) -> VerifierDeployment``: snarkjs' verifier of that key with a
  ``verificationKeyHash()`` of its own constants; the chain refuses one whose hash differs) and
  the layout of the kind's public signals.
* ``record(session, step, kind, commitments) -> Receipt`` stores the sending party's claim as
  given; ``record_verified(session, step, kind, proof, public_signals, *, preflight=True) ->
  Receipt`` has the chain run the session's verifier and stores the commitments *from the public
  signals* (entry ``verified=True``), superseding an unverified entry; it reverts unless the
  proof verifies and its ``session``/``step`` signals equal the arguments. Only the party that
  sends a kind writes its slots (client: client_forward, client_backward; server: server_step).
  ``public_signals``: ``zk.PublicSignals``, a ``circuits.Statement`` or a list of ints.
* ``entry(session, step, kind, *, party=None) -> Entry | None`` (the session opening ``party``
  belongs to; default: the sending account); ``session(session, party) -> SessionInfo | None``;
  ``events(session, *, from_block=0) -> list[StepEvent]`` (every opening of that id: check
  ``submitter``).
* ``check_verifier(session, kind, vk, *, party) -> str`` checks an entry's verifier against the
  ceremony: the chain's key hash equals ``vk``'s and the verifier's code is exactly what ``vk``
  generates (rendered and compiled with the pinned toolchain); ``LedgerMismatch`` says which
  part differs. ``check_session_keys(session, verification_keys, *, party)`` does so for every
  kind of a transcript's keys; ``python -m splitverify.ledger check --node URL --address ADDR
  --party ADDR --transcript transcript.json`` runs it from outside (exit 0 when it matches, 3
  when it does not).
* ``kind`` is a proof kind name (``client_forward``, ``server_step``, ``client_backward``) or its
  index 0..2; ``session`` and every commitment are BN254 scalar-field elements; ``step`` fits
  in 64 bits.
* Errors: bad arguments raise ``InputError`` before anything is sent; a transaction the contract
  rejects raises ``LedgerRejected`` (a ``LedgerError``) naming session, step, kind and the
  decoded revert reason (e.g. ``AlreadyRecorded(...)``, ``NotAParty(...)``), and nothing is
  recorded; a node that fails or does not answer raises ``LedgerError``.
* ``Receipt``: function, tx hash, block, gas used, ``seconds`` (send to mined receipt) and
  ``preflight_s`` (the simulation that gets a revert reason without paying for a failed
  transaction; ``preflight=False`` skips it, and the chain itself then rejects the transaction).

Gas limits are fixed caps instead of ``eth_estimateGas``: estimating searches the limit by
re-running the transaction a dozen times, and on the embedded chain each run of the pairing check
takes seconds of pure-Python arithmetic. A cap costs nothing extra, since only the gas used is
charged.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any

import eth_abi
from eth_utils import keccak
from pydantic import BaseModel, ConfigDict

from ..recursion import recursion_limit_kept

with recursion_limit_kept():     # web3 and eth_tester import py_ecc and py-evm (see recursion.py)
    from eth_tester.exceptions import TransactionFailed
    from web3 import Web3
    from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception

from .anvil import AnvilNode
from ..circuitgen import KINDS
from ..resources import CONTRACTS_DIR
from ..errors import InputError, LedgerError, LedgerMismatch, LedgerRejected
from .keyed_verifier import keyed_verifier, verification_key_hash
from .solc import SOLC_SETTINGS, CompiledContract, compile_source
from ..zk.ceremony import CircuitKey
from ..zk.curve import R
from ..zk.models import Proof, PublicSignals, VerificationKey
from ..zk.verifier import export_verification_key

__all__ = [
    "KINDS", "Commitments", "Entry", "KindTerms", "Ledger", "Receipt", "SessionInfo",
    "SessionTerms", "SignalLayout", "StepEvent", "VerifierDeployment", "compile_contracts",
    "kind_index", "load_ledger_contract",
]

# the contract numbers the kinds 0, 1, 2 in the circuits' order (KINDS)
LEDGER_SOURCE = CONTRACTS_DIR / "SplitLedger.sol"
LEDGER_ARTIFACT = CONTRACTS_DIR / "build" / "SplitLedger.json"
ABSENT = 255  # SplitLedger.ABSENT: a layout field the public signals do not carry
MAX_STEP = 2**64 - 1
ZERO_ADDRESS = "0x" + "00" * 20
# Caps, not costs (see the module docstring). Measured: recordVerified with 7 public signals
# 0.39 M gas, openSession 0.23 M, deploying SplitLedger 1.85 M, a 7-signal keyed verifier 0.72 M.
CALL_GAS_LIMIT = 2_000_000
DEPLOY_GAS_LIMIT = 6_000_000
_POLL_S = 0.01

# Which public signal of each split circuit fills which entry field (the rest stay 0).
_ENTRY_SIGNALS: dict[str, dict[str, str]] = {
    "client_forward": {"message": "messageCommitment", "weights_before": "weightsCommitment"},
    "server_step": {"message": "messageCommitment", "gradient": "gradientCommitment",
                    "weights_before": "weightsBefore", "weights_after": "weightsAfter"},
    "client_backward": {"gradient": "gradientCommitment", "weights_before": "weightsBefore",
                        "weights_after": "weightsAfter"},
}


# --- arguments --------------------------------------------------------------------------------


def kind_index(kind: str | int) -> int:
    """A proof kind's contract index from its name (or index); InputError names the choices."""
    if isinstance(kind, str) and kind in KINDS:
        return KINDS.index(kind)
    if isinstance(kind, int) and not isinstance(kind, bool) and 0 <= kind < len(KINDS):
        return kind
    choices = ", ".join(f"{name} ({i})" for i, name in enumerate(KINDS))
    raise InputError(f"unknown proof kind {kind!r}: use one of {choices}")


def _require_field_element(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < R:
        raise InputError(f"{what} = {value!r} is not a BN254 scalar-field element in [0, r): "
                         "pass the value as the circuits compute it (reduced mod r)")
    return value


def _require_step(step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        raise InputError(f"step = {step!r} must be an integer in [0, 2^64): steps count from 0")
    return step


@dataclass(frozen=True)
class Commitments:
    """The commitments of one ledger entry (0 where a kind has none)."""

    message: int = 0
    gradient: int = 0
    weights_before: int = 0
    weights_after: int = 0

    def __post_init__(self) -> None:
        for item in fields(self):
            _require_field_element(f"commitment {item.name}", getattr(self, item.name))

    def as_args(self) -> tuple[int, int, int, int]:
        return (self.message, self.gradient, self.weights_before, self.weights_after)

    @classmethod
    def of_statement(cls, kind: str | int, values: Mapping[str, int]) -> Commitments:
        """The entry a statement of ``kind`` fills (the fields ``recordVerified`` takes from
        the public signals), from its values by signal name."""
        name = KINDS[kind_index(kind)]
        missing = sorted(set(_ENTRY_SIGNALS[name].values()) - set(values))
        if missing:
            raise InputError(f"a {name} statement needs {missing} to fill a ledger entry")
        return cls(**{entry_field: values[signal]
                      for entry_field, signal in _ENTRY_SIGNALS[name].items()})


@dataclass(frozen=True)
class SignalLayout:
    """Where a verifier's public signals carry the session, the step and the commitments:
    an index below ``count``, or None when absent (the entry field is then 0)."""

    count: int
    session: int | None = None
    step: int | None = None
    message: int | None = None
    gradient: int | None = None
    weights_before: int | None = None
    weights_after: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.count < ABSENT:
            raise InputError(f"a verifier has 1 to {ABSENT - 1} public signals, not {self.count}")
        for item in fields(self)[1:]:
            index = getattr(self, item.name)
            if index is not None and not 0 <= index < self.count:
                raise InputError(f"signal layout: {item.name} at index {index} is outside the "
                                 f"{self.count} public signals")

    @classmethod
    def for_kind(cls, kind: str | int, names: Sequence[str] | None = None) -> SignalLayout:
        """The layout of the split circuit of ``kind``; ``names`` (a key's public signal names)
        must be that circuit's, so a key of another circuit is refused rather than recorded
        with meaningless commitments."""
        from ..circuitgen.statements import PUBLIC_SIGNALS  # imports torch: only when needed

        name = KINDS[kind_index(kind)]
        expected = PUBLIC_SIGNALS[name]
        if names is not None and tuple(names) != expected:
            raise InputError(f"the key's circuit has public signals {list(names)}, not those of a "
                             f"{name} circuit {list(expected)}: register the {name} key of "
                             "SplitCircuits, or pass layout= for another circuit")
        where = {entry_field: expected.index(signal)
                 for entry_field, signal in _ENTRY_SIGNALS[name].items()}
        return cls(count=len(expected), session=expected.index("session"),
                   step=expected.index("step"), **where)

    def as_struct(self) -> tuple[int, ...]:
        """The contract's ``SignalLayout`` tuple (None as ABSENT)."""
        return tuple(ABSENT if (v := getattr(self, f.name)) is None else v for f in fields(self))

    @classmethod
    def from_struct(cls, values: Sequence[int]) -> SignalLayout:
        return cls(*(None if v == ABSENT else v for v in values))


def _signal_values(public_signals: object) -> list[int]:
    """Public signals as ints: zk.PublicSignals, a circuits Statement, or a sequence of ints."""
    if hasattr(public_signals, "signals") and callable(public_signals.signals):
        values = list(public_signals.signals())  # a circuits.Statement, in snarkjs order
    elif isinstance(public_signals, (PublicSignals, list, tuple)):
        values = list(public_signals)
    else:
        raise InputError(f"public signals must be zk.PublicSignals, a Statement or a list of "
                         f"ints, not {type(public_signals).__name__}")
    return [_require_field_element(f"public signal {i}", v) for i, v in enumerate(values)]


# --- results ----------------------------------------------------------------------------------


class Receipt(BaseModel):
    """One mined transaction: what it called, its hash and block, gas used and latency."""

    model_config = ConfigDict(frozen=True)
    function: str
    tx_hash: str
    block: int
    gas_used: int
    seconds: float  # from sending the transaction to its mined receipt
    preflight_s: float = 0.0  # the eth_call simulation before sending (0 when skipped)


class Entry(BaseModel):
    """A ledger entry as the contract stores it."""

    model_config = ConfigDict(frozen=True)
    session: int
    step: int
    kind: str
    message: int
    gradient: int
    weights_before: int
    weights_after: int
    submitter: str
    block: int
    verified: bool

    @property
    def commitments(self) -> Commitments:
        return Commitments(self.message, self.gradient, self.weights_before, self.weights_after)


class StepEvent(Entry):
    """A decoded ``StepRecorded`` event, with the transaction that emitted it."""

    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class VerifierDeployment:
    """A keyed verifier deployed for one kind: its address, the hash of its key and the layout
    of the kind's public signals."""
    kind: str
    verifier: str
    key_hash: bytes
    layout: SignalLayout
    deploy: Receipt | None  # None when a verifier of the same key was deployed already


_NO_LAYOUT = (0,) * 7  # the layout struct of a kind without a verifier (never read)


@dataclass(frozen=True)
class KindTerms:
    """One kind's part of a session's terms: key hash (zero bytes: the session has no key for
    it), verifier address and signal layout (None: its statements are recorded unverified)."""
    key_hash: bytes = bytes(32)
    verifier: str | None = None
    layout: SignalLayout | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key_hash, bytes) or len(self.key_hash) != 32:
            raise InputError(f"a key hash is 32 bytes, not {self.key_hash!r}")
        if self.verifier is not None and not Web3.is_address(self.verifier):
            raise InputError(f"verifier {self.verifier!r} is not an Ethereum address")
        if (self.verifier is None) != (self.layout is None):
            raise InputError("a kind's terms name a verifier and its signal layout together")

    def as_struct(self) -> tuple[bytes, str, tuple[int, ...]]:
        return (self.key_hash,
                ZERO_ADDRESS if self.verifier is None else Web3.to_checksum_address(self.verifier),
                _NO_LAYOUT if self.layout is None else self.layout.as_struct())


@dataclass(frozen=True)
class SessionTerms:
    """What both parties agree to when a session is opened on the ledger."""
    session: int
    client: str
    server: str
    kinds: tuple[KindTerms, KindTerms, KindTerms]

    def __post_init__(self) -> None:
        _require_field_element("session", self.session)
        for role in ("client", "server"):
            if not Web3.is_address(getattr(self, role)):
                raise InputError(f"{role} {getattr(self, role)!r} is not an Ethereum address")
        if len(self.kinds) != len(KINDS):
            raise InputError(f"session terms have one KindTerms per kind {KINDS}")

    @classmethod
    def of(cls, session: int, client: str, server: str, *,
           keys: Mapping[str, VerificationKey | dict[str, Any]] | None = None,
           verifiers: Mapping[str, VerifierDeployment] | None = None) -> SessionTerms:
        """Terms from the session's verification keys by kind (the transcript's
        ``verification_keys``) and the verifiers deployed for some of them; a verifier of
        another key than the kind's is refused here."""
        keys, verifiers = keys or {}, verifiers or {}
        for kind in (*keys, *verifiers):
            kind_index(kind)
        kinds = []
        for kind in KINDS:
            key_hash = verification_key_hash(keys[kind]) if kind in keys else bytes(32)
            deployed = verifiers.get(kind)
            if deployed is not None and deployed.key_hash != key_hash:
                raise InputError(f"the {kind} verifier at {deployed.verifier} is for key hash "
                                 f"0x{deployed.key_hash.hex()}, not the session's {kind} key "
                                 f"(0x{key_hash.hex()})")
            kinds.append(KindTerms(key_hash, *((deployed.verifier, deployed.layout)
                                               if deployed else (None, None))))
        return cls(session, client, server, tuple(kinds))

    def as_args(self) -> tuple[Any, ...]:
        return (self.session, Web3.to_checksum_address(self.client),
                Web3.to_checksum_address(self.server), [k.as_struct() for k in self.kinds])


class SessionInfo(BaseModel):
    """A session opening as the contract stores it."""

    model_config = ConfigDict(frozen=True)
    client: str
    server: str
    opened_at: int  # block number
    key_hashes: dict[str, str]  # by kind, 0x hex (all zeros: no key)
    verifiers: dict[str, str | None]  # by kind (None: statements recorded unverified only)


# --- the compiled ledger contract -------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ledger_artifact() -> dict[str, Any]:
    """Compile SplitLedger.sol with the pinned solc: the content of build/SplitLedger.json."""
    compiled = compile_source(LEDGER_SOURCE.read_text(), LEDGER_SOURCE.name)["SplitLedger"]
    return {
        "contractName": compiled.name,
        "sourceFile": LEDGER_SOURCE.name,
        "sourceSha256": _sha256(LEDGER_SOURCE),
        "compiler": compiled.compiler,
        "settings": SOLC_SETTINGS,
        "abi": compiled.abi,
        "bytecode": compiled.bytecode,
    }


def artifact_text(artifact: dict[str, Any]) -> str:
    """The committed form: sorted keys, one-space indent, final newline (stable diffs)."""
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def compile_contracts(build_dir: Path | None = None) -> Path:
    """Recompile SplitLedger.sol and write ``build_dir/SplitLedger.json`` (default: the
    committed ``contracts/build``); returns the path. Verifier contracts are compiled per key at
    run time instead (``register_verifier``), into the artifact cache."""
    build_dir = build_dir or LEDGER_ARTIFACT.parent
    build_dir.mkdir(parents=True, exist_ok=True)
    out = build_dir / LEDGER_ARTIFACT.name
    out.write_text(artifact_text(ledger_artifact()))
    return out


def load_ledger_contract() -> CompiledContract:
    """The committed ABI and bytecode, refused if SplitLedger.sol changed since they were built."""
    try:
        artifact = json.loads(LEDGER_ARTIFACT.read_text())
    except (OSError, ValueError) as exc:
        raise LedgerError(f"cannot read {LEDGER_ARTIFACT}: {exc}; run "
                          "`python -m splitverify.ledger compile`") from exc
    if artifact["sourceSha256"] != _sha256(LEDGER_SOURCE):
        raise LedgerError(f"{LEDGER_ARTIFACT.name} was compiled from another version of "
                          f"{LEDGER_SOURCE.name}: run `python -m splitverify.ledger compile`")
    return CompiledContract(name=artifact["contractName"], abi=artifact["abi"],
                            bytecode=artifact["bytecode"], compiler=artifact["compiler"])


def _public_signal_count(verifier: CompiledContract) -> int:
    """N of snarkjs' ``verifyProof(uint[2], uint[2][2], uint[2], uint[N])``."""
    function = verifier.function_abi("verifyProof")
    types = [item["type"] for item in function["inputs"]] if function else []
    if len(types) != 4 or types[:3] != ["uint256[2]", "uint256[2][2]", "uint256[2]"] \
            or not (types[3].startswith("uint256[") and types[3][8:-1].isdigit()):
        raise InputError(f"{verifier.name}.verifyProof{tuple(types)} is not snarkjs' Groth16 "
                         "verifier signature (uint[2], uint[2][2], uint[2], uint[N])")
    return int(types[3][8:-1])


# --- revert reasons ---------------------------------------------------------------------------


def _custom_errors(abi: list[dict[str, Any]]) -> dict[str, tuple[str, list[str], list[str]]]:
    """Custom errors by their 4-byte selector (hex): name, argument types, argument names."""
    table = {}
    for item in abi:
        if item.get("type") == "error":
            types = [arg["type"] for arg in item["inputs"]]
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4].hex()
            table[selector] = (item["name"], types, [arg["name"] for arg in item["inputs"]])
    return table


# What a simulated call that reverts raises: web3 over JSON-RPC raises ContractLogicError with
# the revert data as hex; over eth-tester (the embedded chain) it raises eth-tester's
# TransactionFailed, whose message ends with the data as a Python bytes literal (py-evm's
# str(EVMRevert(data))): the raw bytes are not kept anywhere else, so the literal is parsed back.
Reverted = (ContractLogicError, TransactionFailed)
_BYTES_LITERAL = re.compile(r"""(b'.*'|b".*")\Z""", re.DOTALL)


def _revert_data(exc: BaseException) -> str | None:
    """The revert data (0x-hex) of a reverted call, when the exception carries it."""
    if isinstance(exc, ContractLogicError):
        data = exc.data
        if isinstance(data, dict):  # some nodes nest it: {"data": "0x…", …}
            data = data.get("data")
        return data if isinstance(data, str) and data.startswith("0x") else None
    message = exc.args[0] if isinstance(exc, TransactionFailed) and exc.args else None
    if isinstance(message, bytes):
        return "0x" + message.hex()
    match = _BYTES_LITERAL.search(message) if isinstance(message, str) else None
    if match is None:
        return None
    data = ast.literal_eval(match.group(1))  # literals only: no code runs
    return "0x" + data.hex() if isinstance(data, bytes) else None


def _show_argument(name: str, abi_type: str, value: object) -> str:
    if abi_type == "address" and isinstance(value, str):
        return f"{name}={Web3.to_checksum_address(value)}"  # as web3 shows accounts
    if name == "session" and isinstance(value, int):
        return f"session={value:#x}"  # sessions are random 250-bit numbers: hex is shorter
    if name == "kind" and isinstance(value, int) and 0 <= value < len(KINDS):
        return f"kind={value} ({KINDS[value]})"
    return f"{name}={value}"


# --- the client -------------------------------------------------------------------------------


def _connect(backend: str) -> tuple[Web3, AnvilNode | None]:
    if backend == "embedded":
        with recursion_limit_kept():         # py-evm raises it (see recursion.py)
            from eth_tester import EthereumTester, PyEVMBackend
            from web3 import EthereumTesterProvider

        return Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend()))), None
    if backend == "anvil":
        node = AnvilNode()
        url = node.start()
        return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60})), node
    if backend.startswith(("http://", "https://")):
        w3 = Web3(Web3.HTTPProvider(backend, request_kwargs={"timeout": 60}))
        if not w3.is_connected():
            raise LedgerError(f"no Ethereum node answers at {backend}: start one, or use the "
                              "'embedded' or 'anvil' backend")
        return w3, None
    raise InputError(f"unknown ledger backend {backend!r}: use 'embedded' (in-process), "
                     "'anvil' (a local anvil node) or the http(s):// URL of a node")


class Ledger:
    """A connection to a chain and (once deployed or attached) one SplitLedger contract.
    Make one with :meth:`open`; it is a context manager and ``close()`` stops what it started."""

    def __init__(self, w3: Web3, backend: str, account: str | None,
                 node: AnvilNode | None = None,
                 receipt_timeout_s: float = 120.0):
        self.w3 = w3
        self.backend = backend
        self.account = account
        self.node = node
        self.receipt_timeout_s = receipt_timeout_s
        self.receipts: list[Receipt] = []
        self._compiled = load_ledger_contract()
        self._errors = _custom_errors(self._compiled.abi)
        self._contract: Any = None
        self._verifiers: dict[tuple[str, bytes], VerifierDeployment] = {}  # by (kind, key hash)
        self.signing_key: bytes | None = None  # the sending account's key when signed locally

    @classmethod
    def open(cls, backend: str = "embedded", *, address: str | None = None,
             private_key: str | bytes | None = None,
             receipt_timeout_s: float = 120.0) -> Ledger:
        """Connect (starting anvil for ``anvil``), choose the sending account and, with
        ``address``, attach to an existing SplitLedger."""
        if not isinstance(backend, str):
            raise InputError(f"backend must be a string, not {type(backend).__name__}")
        w3, node = _connect(backend)
        try:
            account, key = cls._sending_account(w3, backend, private_key)
            ledger = cls(w3, backend, account, node, receipt_timeout_s)
            ledger.signing_key = key
            if address is not None:
                ledger.attach(address)
        except BaseException:
            if node is not None:
                node.stop()
            raise
        return ledger

    @staticmethod
    def _sending_account(w3: Web3, backend: str,
                         private_key: str | bytes | None) -> tuple[str | None, bytes | None]:
        if private_key is not None:
            from eth_account import Account
            from web3.middleware import SignAndSendRawMiddlewareBuilder

            try:
                account = Account.from_key(private_key)
            except (ValueError, TypeError) as exc:
                raise InputError(f"the private key is not a secp256k1 key (32 bytes, or 0x "
                                 f"and 64 hex digits): {exc}") from exc
            if account.address not in w3.middleware_onion:  # each signer once per connection
                w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account),
                                           name=account.address, layer=0)
            return account.address, bytes(account.key)
        accounts = w3.eth.accounts
        return (accounts[0] if accounts else None), None  # None: this connection only reads

    def with_account(self, private_key: str | bytes) -> Ledger:
        """This connection and contract, sending from the account of ``private_key`` (signed
        locally): how each party sends its own transactions. The copy does not own the node
        (closing it stops nothing) and adds its receipts to this ledger's ``receipts``."""
        account, key = self._sending_account(self.w3, self.backend, private_key)
        other = Ledger(self.w3, self.backend, account, None, self.receipt_timeout_s)
        other.signing_key = key
        other.receipts, other._contract, other._verifiers = \
            self.receipts, self._contract, self._verifiers
        return other

    def fund(self, address: str, wei: int = 10**18) -> None:
        """Send ``wei`` to ``address`` from the node's first unlocked account (gas money for a
        fresh party account)."""
        if not Web3.is_address(address):
            raise InputError(f"{address!r} is not an Ethereum address (0x and 40 hex digits)")
        accounts = self.w3.eth.accounts
        if not accounts:
            raise LedgerError(f"the node at {self.backend} has no unlocked account to fund "
                              f"{address} from: fund it yourself")
        try:
            tx_hash = self.w3.eth.send_transaction(
                {"from": accounts[0], "to": Web3.to_checksum_address(address), "value": wei})
            self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout_s,
                                                     poll_latency=_POLL_S)
        except (Web3Exception, TransactionFailed) as exc:
            raise LedgerError(f"funding {address}: the node refused the transfer: {exc}") from exc

    def close(self) -> None:
        if self.node is not None:
            self.node.stop()
            self.node = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- the contract --------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self._ledger().address

    def _ledger(self) -> Any:
        if self._contract is None:
            raise LedgerError("no SplitLedger contract yet: call deploy(), or open the ledger "
                              "with address= of a deployed one")
        return self._contract

    def attach(self, address: str) -> None:
        if not Web3.is_address(address):
            raise InputError(f"{address!r} is not an Ethereum address (0x and 40 hex digits)")
        address = Web3.to_checksum_address(address)
        if self.w3.eth.get_code(address) in (b"", None):
            raise LedgerError(f"no contract is deployed at {address} on the {self.backend} chain")
        self._contract = self.w3.eth.contract(address=address, abi=self._compiled.abi)

    def deploy(self) -> Receipt:
        """Deploy SplitLedger (the sending account becomes its owner) and attach to it."""
        receipt, address = self._deploy(self._compiled, "deploying SplitLedger")
        self._contract = self.w3.eth.contract(address=address, abi=self._compiled.abi)
        return receipt

    def _deploy(self, compiled: CompiledContract, context: str) -> tuple[Receipt, str]:
        factory = self.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        receipt, raw = self._send(factory.constructor(), f"{compiled.name}.constructor", context,
                                  gas=DEPLOY_GAS_LIMIT, preflight=False)
        return receipt, raw["contractAddress"]

    def deploy_verifier(self, kind: str | int,
                        key: CircuitKey | VerificationKey | dict[str, Any]) -> VerifierDeployment:
        """Deploy the keyed Groth16 verifier of ``key`` for proofs of ``kind`` (see
        :mod:`splitverify.ledger.keyed_verifier`), once per key: a verifier of the same key deployed
        through this connection is reused."""
        name = KINDS[kind_index(kind)]
        if isinstance(key, CircuitKey):
            layout = SignalLayout.for_kind(name, key.circuit.public_signal_names)  # early
            vk: VerificationKey | dict[str, Any] = export_verification_key(key)
        elif isinstance(key, (VerificationKey, dict)):
            layout, vk = SignalLayout.for_kind(name), key
        else:
            raise InputError("deploy_verifier takes a zk.CircuitKey or its verification key, "
                             f"not {type(key).__name__}")
        key_hash = verification_key_hash(vk)
        if (name, key_hash) in self._verifiers:
            return self._verifiers[(name, key_hash)]
        verifier = keyed_verifier(vk, name)
        count = _public_signal_count(verifier)
        if layout.count != count:
            raise InputError(f"the verifier takes {count} public signals but the {name} layout "
                             f"has {layout.count}: is it the key of another circuit?")
        receipt, address = self._deploy(verifier, f"deploying the {name} verifier")
        deployed = VerifierDeployment(name, address, key_hash, layout, receipt)
        self._verifiers[(name, key_hash)] = deployed
        return deployed

    # -- sessions ------------------------------------------------------------------------------

    def terms_digest(self, terms: SessionTerms) -> bytes:
        """The hash the parties sign (SplitLedger.termsDigest before its EIP-191 prefix):
        the terms, this contract and its chain."""
        encoded = eth_abi.encode(
            ["uint256", "address", "uint256", "address", "address",
             "(bytes32,address,(uint8,uint8,uint8,uint8,uint8,uint8,uint8))[3]"],
            [self.w3.eth.chain_id, self.address, *terms.as_args()])
        return keccak(encoded)

    def sign_terms(self, terms: SessionTerms, private_key: str | bytes | None = None) -> bytes:
        """This party's EIP-191 signature of ``terms`` (with the key it sends from, or
        ``private_key``), for the other party to open the session with."""
        from eth_account import Account
        from eth_account.messages import encode_defunct

        key = private_key if private_key is not None else self._private_key()
        return bytes(Account.sign_message(encode_defunct(primitive=self.terms_digest(terms)),
                                          key).signature)

    def _private_key(self) -> bytes:
        if self.signing_key is None:
            raise InputError(f"account {self.account} is the node's, not a local key: pass "
                             "private_key= to sign session terms")
        return self.signing_key

    def open_session(self, terms: SessionTerms, counterpart_signature: bytes) -> Receipt:
        """Open ``terms.session`` for its client and server: sent by one of them, with the
        other's ``sign_terms`` signature."""
        if not isinstance(terms, SessionTerms):
            raise InputError(f"terms must be a ledger.SessionTerms, not {type(terms).__name__}")
        if not isinstance(counterpart_signature, bytes) or len(counterpart_signature) != 65:
            raise InputError("the counterpart's signature is 65 bytes (r, s, v), as sign_terms "
                             "makes it")
        function = self._ledger().functions.openSession(*terms.as_args(), counterpart_signature)
        return self._send(function, "openSession",
                          f"opening session {terms.session:#x}", gas=DEPLOY_GAS_LIMIT)[0]

    def session(self, session: int, party: str) -> SessionInfo | None:
        """The opening of ``session`` that ``party`` belongs to, or None."""
        _require_field_element("session", session)
        client, server, opened_at, kinds = \
            self._ledger().functions.sessionOf(session, self._address(party)).call()
        if opened_at == 0:
            return None
        return SessionInfo(
            client=client, server=server, opened_at=opened_at,
            key_hashes={kind: "0x" + bytes(k[0]).hex() for kind, k in zip(KINDS, kinds)},
            verifiers={kind: None if int(k[1], 16) == 0 else k[1] for kind, k in zip(KINDS, kinds)})

    def check_verifier(self, session: int, kind: str | int,
                       vk: VerificationKey | dict[str, Any], *, party: str) -> str:
        """Check the verifier of ``kind`` in ``party``'s opening of ``session`` against the
        ceremony's key ``vk``: the chain's key hash is ``vk``'s and the verifier's code is
        exactly what ``vk`` generates. Returns the verifier's address; LedgerMismatch names the
        part that differs, LedgerError a session or kind with nothing to check."""
        name = KINDS[kind_index(kind)]
        info = self.session(session, party)
        if info is None:
            raise LedgerError(f"session {session:#x} was not opened on the ledger at "
                              f"{self.address} by {party}: there is no verifier to check")
        want = "0x" + verification_key_hash(vk).hex()
        if info.key_hashes[name] != want:
            raise LedgerMismatch(f"session {session:#x}: the chain binds the {name} kind to key "
                                 f"hash {info.key_hashes[name]}, the ceremony's {name} key hashes "
                                 f"to {want}: its verified {name} entries were verified under "
                                 "another key than the session's")
        address = info.verifiers[name]
        if address is None:
            raise LedgerError(f"session {session:#x} has no {name} verifier: its {name} "
                              "entries are unverified claims")
        self.check_verifier_code(address, name, vk, f"session {session:#x}: ")
        return address

    def check_verifier_code(self, address: str, kind: str | int,
                            vk: VerificationKey | dict[str, Any], context: str = "") -> None:
        """LedgerMismatch unless the code at ``address`` is exactly the keyed verifier ``vk``
        generates for ``kind`` (what a party checks before it signs terms naming a verifier)."""
        name = KINDS[kind_index(kind)]
        code = "0x" + bytes(self.w3.eth.get_code(self._address(address))).hex()
        if code != keyed_verifier(vk, name).runtime_bytecode.lower():
            raise LedgerMismatch(f"{context}the {name} verifier at {address} is not the verifier "
                                 "the ceremony's key generates (its code differs from snarkjs' "
                                 "template of that key compiled with the pinned solc): it may "
                                 "accept proofs the key does not")

    def check_session_keys(self, session: int,
                           verification_keys: Mapping[str, VerificationKey | dict[str, Any]], *,
                           party: str) -> dict[str, str | None]:
        """``check_verifier`` for every kind of a transcript's keys that has a verifier on
        chain (kinds without one get None after their key hash is checked)."""
        checked: dict[str, str | None] = {}
        info = self.session(session, party)
        for kind, vk in verification_keys.items():
            if info is not None and info.verifiers.get(kind) is None:
                want = "0x" + verification_key_hash(vk).hex()
                if info.key_hashes[kind] not in (want, "0x" + "00" * 32):
                    raise LedgerMismatch(f"session {session:#x}: the chain binds the {kind} "
                                         f"kind to key hash {info.key_hashes[kind]}, the "
                                         f"ceremony's {kind} key hashes to {want}")
                checked[kind] = None
            else:
                checked[kind] = self.check_verifier(session, kind, vk, party=party)
        return checked

    @staticmethod
    def _address(party: str) -> str:
        if not isinstance(party, str) or not Web3.is_address(party):
            raise InputError(f"party {party!r} is not an Ethereum address (0x and 40 hex digits)")
        return Web3.to_checksum_address(party)

    # -- recording -----------------------------------------------------------------------------

    def record(self, session: int, step: int, kind: str | int,
               commitments: Commitments) -> Receipt:
        """Record the sending party's commitments for one step as given (no proof checked on
        chain)."""
        index, context = self._entry_args(session, step, kind, "record")
        if not isinstance(commitments, Commitments):
            raise InputError(f"commitments must be a ledger.Commitments, not "
                             f"{type(commitments).__name__}")
        function = self._ledger().functions.record(session, step, index, *commitments.as_args())
        return self._send(function, "record", context, gas=CALL_GAS_LIMIT)[0]

    def record_verified(self, session: int, step: int, kind: str | int, proof: Proof,
                        public_signals: object, *, preflight: bool = True) -> Receipt:
        """Have the chain verify ``proof`` with the session's verifier of the kind, then record
        the commitments its public signals carry (``verified=True``), superseding an unverified
        entry."""
        index, context = self._entry_args(session, step, kind, "recordVerified")
        if not isinstance(proof, Proof):
            raise InputError(f"proof must be a zk.Proof, not {type(proof).__name__}")
        signals = _signal_values(public_signals)
        # Proof.to_bytes() is already the verifier's calldata order (EIP-197: Fq2 imaginary first).
        function = self._ledger().functions.recordVerified(session, step, index,
                                                           proof.to_bytes(), signals)
        return self._send(function, "recordVerified", context, gas=CALL_GAS_LIMIT,
                          preflight=preflight)[0]

    def _entry_args(self, session: int, step: int, kind: str | int, what: str) -> tuple[int, str]:
        index = kind_index(kind)
        _require_field_element("session", session)
        _require_step(step)
        return index, f"{what} of session {session:#x} step {step} kind {KINDS[index]}"

    # -- reading -------------------------------------------------------------------------------

    def entry(self, session: int, step: int, kind: str | int, *,
              party: str | None = None) -> Entry | None:
        """The entry of (session, step, kind) in the opening ``party`` (default: the sending
        account) belongs to, or None when nothing was recorded."""
        index, _ = self._entry_args(session, step, kind, "entry")
        if party is None and self.account is None:
            raise InputError("this connection has no account: pass party= (either party's "
                             "address)")
        party = self._address(party if party is not None else self.account)
        message, gradient, before, after, submitter, block, verified = \
            self._ledger().functions.entry(session, party, step, index).call()
        if block == 0:
            return None
        return Entry(session=session, step=step, kind=KINDS[index], message=message,
                     gradient=gradient, weights_before=before, weights_after=after,
                     submitter=submitter, block=block, verified=verified)

    def events(self, session: int, *, from_block: int = 0) -> list[StepEvent]:
        """Every StepRecorded event of ``session``, in chain order."""
        _require_field_element("session", session)
        logs = self._ledger().events.StepRecorded.get_logs(
            argument_filters={"session": session}, from_block=from_block, to_block="latest")
        ordered = sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))
        return [self._decode_event(log) for log in ordered]

    @staticmethod
    def _decode_event(log: Any) -> StepEvent:
        args = log["args"]
        return StepEvent(session=args["session"], step=args["step"], kind=KINDS[args["kind"]],
                         message=args["message"], gradient=args["gradient"],
                         weights_before=args["weightsBefore"], weights_after=args["weightsAfter"],
                         submitter=args["submitter"], block=log["blockNumber"],
                         verified=args["verified"], tx_hash=log["transactionHash"].to_0x_hex(),
                         log_index=log["logIndex"])

    # -- transactions --------------------------------------------------------------------------

    def _send(self, function: Any, name: str, context: str, *, gas: int,
              preflight: bool = True) -> tuple[Receipt, Any]:
        """Send one transaction and wait for it; LedgerRejected if the contract rejects it,
        LedgerError if the node fails."""
        if self.account is None:
            raise LedgerError(f"{context}: the node at {self.backend} has no unlocked account to "
                              "send from: pass private_key= to sign transactions locally")
        tx = {"from": self.account, "gas": gas}
        preflight_s = 0.0
        if preflight:
            started = time.perf_counter()
            self._simulate(function, tx, context)
            preflight_s = time.perf_counter() - started
        started = time.perf_counter()
        try:
            tx_hash = function.transact(tx)
            raw = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout_s, poll_latency=_POLL_S)
        except Reverted as exc:  # a node that rejects a reverting transaction itself
            raise LedgerRejected(f"{context}: reverted: {self._reason(exc)}; nothing was "
                                 "recorded") from exc
        except TimeExhausted as exc:
            raise LedgerError(f"{context}: no receipt within {self.receipt_timeout_s:.0f} s; "
                              "the transaction may still be mined later") from exc
        except Web3Exception as exc:
            raise LedgerError(f"{context}: the node refused the transaction: {exc}") from exc
        seconds = time.perf_counter() - started
        if raw["status"] != 1:
            reason = self._replay_reason(function, tx, raw["blockNumber"])
            raise LedgerRejected(f"{context}: transaction {raw['transactionHash'].to_0x_hex()} "
                                 f"reverted in block {raw['blockNumber']} ({reason}); nothing "
                                 "was recorded")
        receipt = Receipt(function=name, tx_hash=raw["transactionHash"].to_0x_hex(),
                          block=raw["blockNumber"], gas_used=raw["gasUsed"], seconds=seconds,
                          preflight_s=preflight_s)
        self.receipts.append(receipt)
        return receipt, raw

    def _simulate(self, function: Any, tx: dict[str, Any], context: str) -> None:
        try:
            function.call(tx)
        except Reverted as exc:
            raise LedgerRejected(f"{context}: reverted: {self._reason(exc)}; nothing was sent "
                              "or recorded") from exc

    def _replay_reason(self, function: Any, tx: dict[str, Any], block: int) -> str:
        """Why a mined transaction failed: the same call on its parent block's state."""
        try:
            function.call(tx, block_identifier=block - 1)
        except Reverted as exc:
            return self._reason(exc)
        return ("replaying it on the parent block's state does not revert: it ran out of gas "
                "or an earlier transaction of the same block changed the state")

    def _reason(self, exc: BaseException) -> str:
        """A custom error decoded with the ledger's ABI, e.g. ``AlreadyRecorded(session=…)``."""
        data = _revert_data(exc)
        if data is not None and data[2:10] in self._errors:
            name, types, names = self._errors[data[2:10]]
            values = eth_abi.decode(types, bytes.fromhex(data[10:]))
            shown = ", ".join(_show_argument(n, t, v) for n, t, v in zip(names, types, values))
            return f"{name}({shown})"
        return str(exc)


def check_transcript(node: str, address: str, transcript_path: Path, party: str) -> str:
    """The reader's check of a session on a ledger against its transcript's keys (the ceremony):
    one line per kind; LedgerMismatch when the chain disagrees."""
    from ..transcript import Transcript  # the transcript module imports torch: only when needed

    transcript = Transcript.load(transcript_path)
    if not transcript.verification_keys:
        raise InputError(f"{transcript_path} holds no verification keys (proof mode "
                         f"{transcript.proof_mode}): there is no ceremony to check the chain by")
    with Ledger.open(node, address=address) as ledger:
        checked = ledger.check_session_keys(transcript.session_id, transcript.verification_keys,
                                            party=party)
    return "\n".join(f"{kind}: key hash matches the transcript's key; " + (
        f"verifier {verifier} is exactly the key's keyed verifier" if verifier
        else "no verifier: entries of this kind are unverified claims")
        for kind, verifier in checked.items())


def main(argv: Sequence[str] | None = None) -> int:
    """``compile``; ``check``: exit 0 when the chain's session matches the transcript's keys,
    3 when it does not (LedgerMismatch), 1 on bad input or an unreachable node."""
    parser = argparse.ArgumentParser(prog="python -m splitverify.ledger")
    parser.add_argument("command", choices=["compile", "check"],
                        help="compile: rewrite contracts/build/SplitLedger.json (pinned solc); "
                             "check: a session's key hashes and verifiers on a ledger against "
                             "a transcript's verification keys")
    parser.add_argument("--node", help="check: the node's http(s):// URL")
    parser.add_argument("--address", help="check: the SplitLedger contract's address")
    parser.add_argument("--transcript", type=Path, help="check: the session's transcript.json")
    parser.add_argument("--party", help="check: the address of either party of the session")
    args = parser.parse_args(argv)
    if args.command == "compile":
        print(compile_contracts())
        return 0
    missing = [f"--{name}" for name in ("node", "address", "transcript", "party")
               if getattr(args, name) is None]
    if missing:
        parser.error(f"check needs {' '.join(missing)}")
    try:
        print(check_transcript(args.node, args.address, args.transcript, args.party))
    except LedgerMismatch as exc:
        print(f"MISMATCH: {exc}")
        return 3
    except (InputError, LedgerError) as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
