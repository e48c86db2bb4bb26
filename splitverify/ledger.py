"""The Ethereum ledger of split-learning steps: a web3.py client of ``contracts/SplitLedger.sol``.

API (what the runtime's ``--chain`` calls)::

    from splitverify.ledger import Commitments, Ledger

    with Ledger.open("embedded") as ledger:            # or "anvil", or "http://host:port"
        ledger.deploy()                                 # or Ledger.open(..., address="0x…")
        ledger.register_verifier("server_step", key)    # zk.CircuitKey or Solidity source
        ledger.record(session, step, "client_forward",
                      Commitments(message=m, weights_before=w))          # -> Receipt
        ledger.record_verified(session, step, "server_step", proof, public)  # -> Receipt
        ledger.entry(session, step, "server_step")      # -> Entry | None
        ledger.events(session)                          # -> list[StepEvent], chain order
        ledger.receipts                                 # every transaction sent, as Receipt

* ``Ledger.open(backend, *, address=None, private_key=None)`` -- ``embedded``: an in-process
  chain (eth-tester on py-evm, the default; nothing to start; it lives as long as the Ledger
  object, so its entries are gone after close); ``anvil``: the anvil
  binary of the pinned npm toolchain, started on a free loopback port and stopped by ``close()``
  (ToolchainError when the binary is missing); ``http://…``/``https://…``: any node.
  Transactions come from the node's first unlocked account, or from ``private_key`` (signed
  locally).
* ``deploy() -> Receipt`` deploys SplitLedger (the sender becomes its owner);
  ``register_verifier(kind, key_or_source, *, layout=None) -> Registration`` compiles the
  kind's Groth16 verifier (``zk.export_solidity`` of the key; compiled once per key into the
  artifact cache), deploys it and registers it with the layout of the kind's public signals
  (owner only, once per kind).
* ``record(session, step, kind, commitments) -> Receipt`` stores a party's claim as given;
  ``record_verified(session, step, kind, proof, public_signals, *, preflight=True) -> Receipt``
  has the chain run the verifier and stores the commitments *from the public signals* (entry
  ``verified=True``); it reverts unless the proof verifies and its ``session``/``step`` signals
  equal the arguments. ``public_signals``: ``zk.PublicSignals``, a ``circuits.Statement`` or a
  list of ints. The first entry of a (session, step, kind) stands: a plain ``record`` can be made
  by anyone, so readers check ``submitter``; a verified one needs a valid proof of that step.
* ``entry(...) -> Entry | None``; ``events(session, *, from_block=0) -> list[StepEvent]``;
  ``registration(kind) -> (verifier address, SignalLayout) | None``.
* ``kind`` is a proof kind name (``client_forward``, ``server_step``, ``client_backward``) or its
  index 0..2; ``session`` and every commitment are BN254 scalar-field elements; ``step`` fits
  in 64 bits.
* Errors: bad arguments raise ``InputError`` before anything is sent; a transaction the contract
  rejects raises ``LedgerRejected`` (a ``LedgerError``) naming session, step, kind and the
  decoded revert reason (e.g. ``AlreadyRecorded(...)``, ``ProofRejected(...)``), and nothing is
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

from .recursion import recursion_limit_kept

with recursion_limit_kept():     # web3 and eth_tester import py_ecc and py-evm (see recursion.py)
    from eth_tester.exceptions import TransactionFailed
    from web3 import Web3
    from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception

from .anvil import AnvilNode
from .contracts import CONTRACTS_DIR
from .errors import InputError, LedgerError, LedgerRejected
from .solc import SOLC_SETTINGS, CompiledContract, compile_cached, compile_source
from .zk.ceremony import CircuitKey
from .zk.curve import R
from .zk.models import Proof, PublicSignals
from .zk.verifier import export_solidity

__all__ = [
    "KINDS", "Commitments", "Entry", "Ledger", "Receipt", "Registration",
    "SignalLayout", "StepEvent", "compile_contracts", "kind_index", "load_ledger_contract",
]

KINDS = ("client_forward", "server_step", "client_backward")  # contract kinds 0, 1, 2
LEDGER_SOURCE = CONTRACTS_DIR / "SplitLedger.sol"
LEDGER_ARTIFACT = CONTRACTS_DIR / "build" / "SplitLedger.json"
ABSENT = 255  # SplitLedger.ABSENT: a layout field the public signals do not carry
MAX_STEP = 2**64 - 1
# Caps, not costs (see the module docstring). Measured: recordVerified with 7 public signals
# 0.38 M gas, deploying SplitLedger 1.26 M, a 7-signal verifier 0.47 M.
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
        from .circuits.statements import PUBLIC_SIGNALS  # imports torch: only when needed

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
class Registration:
    kind: str
    verifier: str  # the verifier contract's address
    layout: SignalLayout
    deploy: Receipt
    register: Receipt


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


def _verifier_contract_name(kind: str) -> str:
    return "".join(part.title() for part in kind.split("_")) + "Verifier"


def _compile_verifier(source: str) -> CompiledContract:
    """The one contract of ``source`` that has ``verifyProof`` (snarkjs' verifier)."""
    contracts = compile_cached(source, "Verifier.sol")
    verifiers = [c for c in contracts.values() if c.function_abi("verifyProof") is not None]
    if len(verifiers) != 1:
        raise InputError(f"the Solidity source must hold exactly one contract with verifyProof "
                         f"(a snarkjs Groth16 verifier), found {len(verifiers)}")
    return verifiers[0]


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

    def __init__(self, w3: Web3, backend: str, account: str, node: AnvilNode | None = None,
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

    @classmethod
    def open(cls, backend: str = "embedded", *, address: str | None = None,
             private_key: str | None = None, receipt_timeout_s: float = 120.0) -> Ledger:
        """Connect (starting anvil for ``anvil``), choose the sending account and, with
        ``address``, attach to an existing SplitLedger."""
        if not isinstance(backend, str):
            raise InputError(f"backend must be a string, not {type(backend).__name__}")
        w3, node = _connect(backend)
        try:
            account = cls._sending_account(w3, backend, private_key)
            ledger = cls(w3, backend, account, node, receipt_timeout_s)
            if address is not None:
                ledger.attach(address)
        except BaseException:
            if node is not None:
                node.stop()
            raise
        return ledger

    @staticmethod
    def _sending_account(w3: Web3, backend: str, private_key: str | None) -> str:
        if private_key is not None:
            from eth_account import Account
            from web3.middleware import SignAndSendRawMiddlewareBuilder

            account = Account.from_key(private_key)
            w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
            return account.address
        accounts = w3.eth.accounts
        if not accounts:
            raise LedgerError(f"the node at {backend} has no unlocked account to send from: "
                              "pass private_key= to sign transactions locally")
        return accounts[0]

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

    def register_verifier(self, kind: str | int, key_or_source: CircuitKey | str, *,
                          layout: SignalLayout | None = None) -> Registration:
        """Deploy the Groth16 verifier of ``kind`` (from its key, or snarkjs' Solidity source)
        and register it with the layout of its public signals; owner only, once per kind."""
        name = KINDS[kind_index(kind)]
        if isinstance(key_or_source, CircuitKey):
            names: Sequence[str] | None = key_or_source.circuit.public_signal_names
        elif isinstance(key_or_source, str):
            names = None
        else:
            raise InputError("register_verifier takes a zk.CircuitKey or a Solidity source "
                             f"string, not {type(key_or_source).__name__}")
        layout = layout or SignalLayout.for_kind(name, names)  # a wrong key fails here, early
        source = (export_solidity(key_or_source, _verifier_contract_name(name))
                  if isinstance(key_or_source, CircuitKey) else key_or_source)
        verifier = _compile_verifier(source)
        count = _public_signal_count(verifier)
        if layout.count != count:
            raise InputError(f"the verifier takes {count} public signals but the {name} layout "
                             f"has {layout.count}: is it the key of another circuit?")
        context = f"registering the {name} verifier"
        deployed, address = self._deploy(verifier, context)
        function = self._ledger().functions.registerVerifier(kind_index(name), address,
                                                             layout.as_struct())
        registered, _ = self._send(function, "registerVerifier", context, gas=CALL_GAS_LIMIT)
        return Registration(name, address, layout, deployed, registered)

    def registration(self, kind: str | int) -> tuple[str, SignalLayout] | None:
        """The verifier address and signal layout registered for ``kind``, or None."""
        address, layout = self._ledger().functions.registration(kind_index(kind)).call()
        if int(address, 16) == 0:
            return None
        return address, SignalLayout.from_struct(layout)

    # -- recording -----------------------------------------------------------------------------

    def record(self, session: int, step: int, kind: str | int,
               commitments: Commitments) -> Receipt:
        """Record a party's commitments for one step as given (no proof checked on chain)."""
        index, context = self._entry_args(session, step, kind, "record")
        if not isinstance(commitments, Commitments):
            raise InputError(f"commitments must be a ledger.Commitments, not "
                             f"{type(commitments).__name__}")
        function = self._ledger().functions.record(session, step, index, *commitments.as_args())
        return self._send(function, "record", context, gas=CALL_GAS_LIMIT)[0]

    def record_verified(self, session: int, step: int, kind: str | int, proof: Proof,
                        public_signals: object, *, preflight: bool = True) -> Receipt:
        """Have the chain verify ``proof`` with the kind's registered verifier, then record the
        commitments its public signals carry (``verified=True``)."""
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

    def entry(self, session: int, step: int, kind: str | int) -> Entry | None:
        """The entry of (session, step, kind), or None when nothing was recorded."""
        index, _ = self._entry_args(session, step, kind, "entry")
        message, gradient, before, after, submitter, block, verified = \
            self._ledger().functions.entry(session, step, index).call()
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m splitverify.ledger")
    parser.add_argument("command", choices=["compile"],
                        help="compile: rewrite contracts/build/SplitLedger.json (pinned solc)")
    parser.parse_args(argv)
    print(compile_contracts())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
