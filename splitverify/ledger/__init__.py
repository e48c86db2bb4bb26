"""The Ethereum ledger: the SplitLedger contract's client (:mod:`.contract`), a party's ledger
sink in the runtime (:mod:`.sink`), the pinned solc (:mod:`.solc`), a local anvil node
(:mod:`.anvil`) and the keyed Groth16 verifiers (:mod:`.keyed_verifier`).
``python -m splitverify.ledger compile|check`` is :func:`.contract.main`."""

from .contract import (KINDS, Commitments, Entry, KindTerms, Ledger, Receipt, SessionInfo,
                       SessionTerms, SignalLayout, StepEvent, VerifierDeployment,
                       compile_contracts, kind_index, load_ledger_contract)

__all__ = [
    "KINDS", "Commitments", "Entry", "KindTerms", "Ledger", "Receipt", "SessionInfo",
    "SessionTerms", "SignalLayout", "StepEvent", "VerifierDeployment", "compile_contracts",
    "kind_index", "load_ledger_contract",
]
