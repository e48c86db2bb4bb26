"""Where the data splitverify ships lives: the Circom templates (``circuits/*.circom``), the
ledger contract (``contracts/SplitLedger.sol`` and its committed ``build/SplitLedger.json``) and
the pinned npm toolchain's ``package.json`` and ``package-lock.json`` (what `splitverify
toolchain install` installs).

A wheel carries them inside the package, under ``splitverify/_data/`` (setup.py's build step
copies them there); an editable install reads them from the checkout's top-level ``circuits/``
and ``contracts/`` folders and package files, so an edit to a template or to the contract takes
effect at once.
``python -m splitverify.ledger compile`` rewrites the contract build wherever it is found.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InstallError

PACKAGE_DIR = Path(__file__).resolve().parent
# the folder name inside the package: setup.py writes it, this module reads it
SHIPPED_DATA = "_data"


def _data_dir(name: str) -> Path:
    """``name`` (circuits or contracts) inside an installed wheel, else in the checkout."""
    for candidate in (PACKAGE_DIR / SHIPPED_DATA / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise InstallError(f"splitverify's {name} folder is missing (neither inside the installed "
                         f"package at {PACKAGE_DIR / SHIPPED_DATA} nor in a checkout at "
                         f"{PACKAGE_DIR.parent}): reinstall splitverify (`pip install .` from "
                         "the checkout, or `bash scripts/setup.sh`)")


CIRCUITS_DIR = _data_dir("circuits")
CONTRACTS_DIR = _data_dir("contracts")

# the npm toolchain's manifest and lock: the files `npm ci` needs
TOOLCHAIN_FILES = ("package.json", "package-lock.json")


def toolchain_manifest_dir() -> Path | None:
    """The folder holding the pinned toolchain's package.json and lock: inside an installed
    wheel (``_data/toolchain``), else the checkout's top level; None when neither has both."""
    for candidate in (PACKAGE_DIR / SHIPPED_DATA / "toolchain", PACKAGE_DIR.parent):
        if all((candidate / name).is_file() for name in TOOLCHAIN_FILES):
            return candidate
    return None
