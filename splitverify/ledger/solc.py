"""Solidity compilation with the pinned solc-js (the npm package ``solc`` in node_modules).

Standard JSON in, ABI and creation bytecode out, optimizer on, EVM version pinned (``prague``:
the fork both chains of :mod:`splitverify.ledger` run, py-evm's newest and an anvil option), so
the same source always gives the same bytes. Generated sources (the per-key Groth16 verifiers)
are compiled once and cached by content in the artifact cache (kind ``solidity``).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import CompileError, ToolchainError
from ..zk.cache import ArtifactCache, digest
from ..zk.toolchain import PINNED, find_toolchain

EVM_VERSION = "prague"
SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": EVM_VERSION,
}
_OUTPUTS = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]
_TIMEOUT_S = 600

# Reads a standard-JSON request on stdin and writes {version, output}; loading soljson takes a few
# seconds, so one process compiles a whole request.
_COMPILE_JS = r"""
const solc = require(process.env.SPLITVERIFY_SOLC);
const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  const output = JSON.parse(solc.compile(Buffer.concat(chunks).toString('utf8')));
  process.stdout.write(JSON.stringify({ version: solc.version(), output }));
});
"""


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # creation code, 0x-prefixed hex
    compiler: str  # solc's full version string
    # the code the chain holds once deployed (0x hex): what a reader compares eth_getCode with
    runtime_bytecode: str = ""

    def function_abi(self, name: str) -> dict[str, Any] | None:
        return next((item for item in self.abi
                     if item.get("type") == "function" and item.get("name") == name), None)


def standard_json_request(source: str, filename: str) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {filename: {"content": source}},
        "settings": {**SOLC_SETTINGS, "outputSelection": {"*": {"*": _OUTPUTS}}},
    }


def compile_source(source: str, filename: str) -> dict[str, CompiledContract]:
    """Every contract of one Solidity source, by name. CompileError carries solc's messages."""
    toolchain = find_toolchain()  # also checks that solc is the pinned version
    request = json.dumps(standard_json_request(source, filename))
    env = {**os.environ, "SPLITVERIFY_SOLC": str(toolchain.node_modules / "solc")}
    try:
        proc = subprocess.run([toolchain.node, "-e", _COMPILE_JS], input=request, env=env,
                              capture_output=True, text=True, timeout=_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(f"solc-js did not compile {filename} within {_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        raise ToolchainError(f"solc-js failed on {filename} (exit {proc.returncode}):\n"
                             f"{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout)
    output = result["output"]
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        messages = "\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors)
        raise CompileError(f"solc rejected {filename}:\n{messages}")
    return {
        name: CompiledContract(name=name, abi=compiled["abi"],
                               bytecode="0x" + compiled["evm"]["bytecode"]["object"],
                               compiler=result["version"],
                               runtime_bytecode="0x" + compiled["evm"]["deployedBytecode"]["object"])
        for name, compiled in output["contracts"][filename].items()
    }


def compile_cached(source: str, filename: str, cache: ArtifactCache | None = None
                   ) -> dict[str, CompiledContract]:
    """``compile_source`` through the artifact cache: a source is compiled once per machine."""
    cache = cache or ArtifactCache()
    key = digest({"source": source, "filename": filename, "settings": SOLC_SETTINGS,
                  "solc": PINNED["solc"], "outputs": _OUTPUTS})

    def build(tmp: Path) -> dict[str, Any]:
        contracts = compile_source(source, filename)
        (tmp / "contracts.json").write_text(
            json.dumps({name: asdict(c) for name, c in contracts.items()}, sort_keys=True))
        return {"filename": filename, "contracts": sorted(contracts)}

    entry = cache.get_or_build("solidity", key, build)
    stored = json.loads((entry.path / "contracts.json").read_text())
    return {name: CompiledContract(**fields) for name, fields in stored.items()}
