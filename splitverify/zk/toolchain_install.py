"""`splitverify toolchain install`: the pinned npm toolchain (circom2, snarkjs, circomlib, solc,
anvil) for a splitverify installed with pip, which has no checkout to run `npm ci` in.

The package ships its own ``package.json`` and ``package-lock.json`` (:mod:`splitverify.resources`);
`npm ci` installs exactly the locked versions, each checked by npm against the lock's integrity
hash, into the user cache as the artifact-cache entry ``toolchain/<sha256 of the lock>/``: built
aside and renamed into place once complete, so a half-finished install is never found and
another lock gets its own folder. :func:`splitverify.zk.toolchain.find_toolchain` looks there
after ``$SPLITVERIFY_NODE_MODULES`` and a checkout's ``node_modules``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import ToolchainError
from ..resources import TOOLCHAIN_FILES, toolchain_manifest_dir
from .cache import ArtifactCache
from .toolchain import CACHE_KIND, PINNED, Toolchain, find_toolchain, lock_digest

NPM_TIMEOUT_S = 1800


def install_toolchain(cache: ArtifactCache | None = None, npm: str | None = None
                      ) -> tuple[Path, bool]:
    """Run `npm ci` on the shipped package.json and lock into the user cache (once per lock).
    Returns the node_modules folder and whether this call installed it."""
    manifest_dir = toolchain_manifest_dir()
    if manifest_dir is None:
        raise ToolchainError("this splitverify installation ships no package.json and "
                             "package-lock.json (splitverify/_data/toolchain): reinstall it "
                             "from a complete checkout or wheel")
    npm = npm or shutil.which("npm")
    if npm is None:
        raise ToolchainError("`npm` is not on PATH: install Node.js ≥ 18 with npm (e.g. "
                             "`apt-get install nodejs npm`), then run `splitverify toolchain "
                             "install` again")

    def build(folder: Path) -> dict:
        for name in TOOLCHAIN_FILES:
            shutil.copyfile(manifest_dir / name, folder / name)
        try:
            proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                                  cwd=folder, capture_output=True, text=True,
                                  timeout=NPM_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise ToolchainError(f"`npm ci` did not finish within {NPM_TIMEOUT_S} s (is the "
                                 "npm registry reachable?); run `splitverify toolchain "
                                 "install` again") from exc
        if proc.returncode != 0:
            raise ToolchainError(f"`npm ci` failed (exit {proc.returncode}) installing the "
                                 f"pinned toolchain:\n{(proc.stdout + proc.stderr)[-3000:]}\n"
                                 "fix what npm reports (registry access, disk space), then run "
                                 "`splitverify toolchain install` again")
        installed = Toolchain(shutil.which("node") or "node", folder / "node_modules")
        for name, version in PINNED.items():       # the lock and the pins must agree
            found = installed.package_version(name)
            if found != version:
                raise ToolchainError(f"the shipped lock installs {name} {found}, but "
                                     f"splitverify is pinned to {version}: this installation "
                                     "is inconsistent; reinstall splitverify")
        return {"versions": PINNED, "lock_sha256": lock_digest(manifest_dir)}

    entry = (cache or ArtifactCache()).get_or_build(CACHE_KIND, lock_digest(manifest_dir), build)
    find_toolchain.cache_clear()            # a lookup made before the install is stale now
    return entry.path / "node_modules", entry.built
