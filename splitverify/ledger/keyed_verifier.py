"""Groth16 verifier contracts bound to their verification key, and the key hash that binds them.

SplitLedger fixes each session's verifier by the hash of the key the session's ceremony
produced (``verification_key_hash``). A *keyed verifier* is snarkjs' Solidity verifier rendered
from the verification key alone (snarkjs' own template and its ``ejs`` renderer, as
``snarkjs zkey export solidityverifier`` does) plus one function, ``verificationKeyHash()``,
that hashes the contract's own key constants, so the hash it declares is the key it verifies
with. The chain checks the declared hash when a session is opened; anyone holding the key (a
transcript's ``verification_keys``) can also check the deployed *code*: the same key always
renders and compiles (pinned solc) to the same runtime bytecode (``keyed_verifier``).

The key hash is keccak256 of the key's points as 32-byte big-endian words in EIP-197 order
(an Fq2 element's imaginary part first): alpha (x, y), beta, gamma, delta (x.c1, x.c0, y.c1,
y.c0), then IC[0..n] (x, y).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from eth_utils import keccak

from ..errors import InputError, ToolchainError
from .solc import CompiledContract, compile_cached
from ..zk.models import VerificationKey
from ..zk.toolchain import find_toolchain

__all__ = ["keyed_verifier", "keyed_verifier_source", "verification_key_hash",
           "verifier_contract_name"]

_RENDER_TIMEOUT_S = 120

# Renders snarkjs' Groth16 template with the verification key read (as snarkjs JSON) on stdin.
_RENDER_JS = r"""
const ejs = require(process.env.SPLITVERIFY_EJS);
const fs = require('fs');
const template = fs.readFileSync(process.env.SPLITVERIFY_TEMPLATE, 'utf8');
const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  process.stdout.write(ejs.render(template, JSON.parse(Buffer.concat(chunks).toString('utf8'))));
});
"""

# The template's names of the key constants, in the hash's word order (IC points follow).
_KEY_CONSTANTS = ("alphax", "alphay", "betax1", "betax2", "betay1", "betay2",
                  "gammax1", "gammax2", "gammay1", "gammay2",
                  "deltax1", "deltax2", "deltay1", "deltay2")


def _as_key(vk: VerificationKey | dict[str, Any]) -> VerificationKey:
    if isinstance(vk, VerificationKey):
        return vk
    if isinstance(vk, dict):
        return VerificationKey.from_snarkjs(vk)
    raise InputError(f"a verification key must be a zk.VerificationKey or snarkjs' JSON dict, "
                     f"not {type(vk).__name__}")


def _key_words(vk: VerificationKey) -> list[int]:
    """The key's coordinates in the hash's (and the template constants') order."""
    words = list(vk.vk_alpha_1)
    for point in (vk.vk_beta_2, vk.vk_gamma_2, vk.vk_delta_2):
        (x0, x1), (y0, y1) = point
        words += [x1, x0, y1, y0]
    for x, y in vk.IC:
        words += [x, y]
    return words


def verification_key_hash(vk: VerificationKey | dict[str, Any]) -> bytes:
    """The 32-byte hash SplitLedger registers for a session's key (see the module docstring)."""
    return keccak(b"".join(word.to_bytes(32, "big") for word in _key_words(_as_key(vk))))


def verifier_contract_name(kind: str) -> str:
    """``server_step`` -> ``ServerStepVerifier``."""
    return "".join(part.title() for part in kind.split("_")) + "Verifier"


def _key_hash_function(ic_points: int) -> str:
    names = [*_KEY_CONSTANTS, *(f"IC{i}{axis}" for i in range(ic_points) for axis in "xy")]
    stores = "\n".join(f"            mstore(add(p, {32 * i}), {name})"
                       for i, name in enumerate(names))
    return f"""
    /// keccak256 of this contract's own key constants (alpha, beta, gamma, delta, IC; Fq2
    /// imaginary part first): the key hash a SplitLedger session binds this verifier to.
    function verificationKeyHash() external pure returns (bytes32 keyHash) {{
        assembly {{
            let p := mload(0x40)
{stores}
            keyHash := keccak256(p, {32 * len(names)})
        }}
    }}
"""


def keyed_verifier_source(vk: VerificationKey | dict[str, Any], contract_name: str) -> str:
    """snarkjs' Groth16 verifier of ``vk`` named ``contract_name``, with ``verificationKeyHash``."""
    key = _as_key(vk)
    if not contract_name.isidentifier():
        raise InputError(f"{contract_name!r} is not a valid contract name")
    toolchain = find_toolchain()
    snarkjs = toolchain.node_modules / "snarkjs"
    env = {**os.environ, "SPLITVERIFY_EJS": str(toolchain.node_modules / "ejs"),
           "SPLITVERIFY_TEMPLATE": str(snarkjs / "templates" / "verifier_groth16.sol.ejs")}
    try:
        proc = subprocess.run([toolchain.node, "-e", _RENDER_JS], input=json.dumps(
            key.to_snarkjs()), env=env, capture_output=True, text=True, timeout=_RENDER_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(f"rendering the Groth16 verifier template did not finish within "
                             f"{_RENDER_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        raise ToolchainError(f"rendering snarkjs' Groth16 verifier template failed (exit "
                             f"{proc.returncode}):\n{proc.stderr[-3000:]}")
    source = proc.stdout.replace("contract Groth16Verifier", f"contract {contract_name}", 1)
    end = source.rstrip().rfind("}")  # the contract's closing brace
    return source[:end] + _key_hash_function(len(key.IC)) + source[end:]


def keyed_verifier(vk: VerificationKey | dict[str, Any], kind: str) -> CompiledContract:
    """The compiled keyed verifier of ``vk`` for proofs of ``kind`` (compiled once per key into
    the artifact cache): its ``runtime_bytecode`` is the code a deployed one must hold."""
    name = verifier_contract_name(kind)
    contracts = compile_cached(keyed_verifier_source(vk, name), "Verifier.sol")
    if name not in contracts:
        raise ToolchainError(f"compiling the {kind} verifier did not produce contract {name}")
    return contracts[name]
