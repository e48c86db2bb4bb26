"""Finding and running the pinned Node.js tools (circom2, snarkjs) with typed errors."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import ToolchainError
from ..resources import toolchain_manifest_dir
from .cache import default_cache_dir

ENV_NODE_MODULES = "SPLITVERIFY_NODE_MODULES"
REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP_HINT = (
    "run `splitverify toolchain install` (the pinned npm packages into the user cache; in a "
    "checkout, `npm ci` there does the same), or point "
    f"${ENV_NODE_MODULES} at a node_modules folder that holds circom2@0.2.23, snarkjs@0.7.6 "
    "and circomlib@2.0.5"
)
PINNED = {"circom2": "0.2.23", "snarkjs": "0.7.6", "circomlib": "2.0.5", "solc": "0.8.37"}


@dataclass(frozen=True)
class Toolchain:
    node: str
    node_modules: Path

    def package_version(self, name: str) -> str:
        manifest = self.node_modules / name / "package.json"
        try:
            return json.loads(manifest.read_text())["version"]
        except (OSError, ValueError, KeyError) as exc:
            raise ToolchainError(f"npm package {name} is missing ({manifest}): {SETUP_HINT}") from exc

    @property
    def circomlib(self) -> Path:
        return self.node_modules / "circomlib" / "circuits"

    def script(self, package: str) -> Path:
        entry = {"snarkjs": "build/cli.cjs", "circom2": "cli.js"}[package]
        path = self.node_modules / package / entry
        if not path.is_file():
            raise ToolchainError(f"{package} is not installed ({path} missing): {SETUP_HINT}")
        return path

    def run(self, package: str, args: list[str], *, cwd: str | Path | None = None,
            timeout: float = 3600, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [self.node, str(self.script(package)), *map(str, args)]
        try:
            proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ToolchainError(f"{package} {' '.join(map(str, args[:2]))} timed out after "
                                 f"{timeout:.0f} s") from exc
        if check and proc.returncode != 0:
            raise ToolchainError(
                f"{package} {' '.join(map(str, args[:2]))} failed (exit {proc.returncode}):\n"
                f"{tail(proc)}")
        return proc


_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


def tail(proc: subprocess.CompletedProcess, limit: int = 3000) -> str:
    """The end of a tool's combined output, without colour codes."""
    text = strip_ansi((proc.stdout or "") + (proc.stderr or ""))
    return text[-limit:].strip()


# the artifact-cache kind `splitverify toolchain install` writes (splitverify.zk.toolchain_install)
CACHE_KIND = "toolchain"


def lock_digest(manifest_dir: Path) -> str:
    """The cache key of a toolchain: the sha256 of its lock file."""
    return hashlib.sha256((manifest_dir / "package-lock.json").read_bytes()).hexdigest()


def installed_node_modules(cache_root: Path | None = None) -> Path | None:
    """Where `splitverify toolchain install` puts the node_modules folder for this package's
    lock (it exists only once an install completed); None when the package ships no lock.
    Creates nothing: looking must work with a read-only cache."""
    manifest_dir = toolchain_manifest_dir()
    if manifest_dir is None:
        return None
    root = cache_root if cache_root is not None else default_cache_dir()
    return root / CACHE_KIND / lock_digest(manifest_dir) / "node_modules"


def _candidates() -> list[Path]:
    """Where the toolchain is looked for, in order: $SPLITVERIFY_NODE_MODULES alone when set;
    else a checkout's node_modules, the working folder's, then what `splitverify toolchain
    install` put in the user cache."""
    env = os.environ.get(ENV_NODE_MODULES)
    if env:
        return [Path(env)]
    installed = installed_node_modules()
    return [REPO_ROOT / "node_modules", Path.cwd() / "node_modules",
            *([installed] if installed is not None else [])]


@cache
def find_toolchain() -> Toolchain:
    """The node binary and the node_modules folder holding the pinned packages."""
    node = shutil.which("node")
    if node is None:
        raise ToolchainError(f"Node.js (`node`) is not on PATH: install Node.js ≥ 18, then {SETUP_HINT}")
    for candidate in _candidates():
        if (candidate / "snarkjs" / "package.json").is_file():
            tc = Toolchain(node, candidate.resolve())
            for name, version in PINNED.items():
                found = tc.package_version(name)
                if found != version:
                    raise ToolchainError(f"{name} {found} is installed in {candidate}, but "
                                         f"splitverify is pinned to {version}: {SETUP_HINT}")
            return tc
    where = ", ".join(str(c) for c in _candidates())
    raise ToolchainError(f"the Circom/snarkjs toolchain was not found (looked in {where}): {SETUP_HINT}")
