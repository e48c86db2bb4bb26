# The compiled parts: over mcl, the helper of the development trusted setup (batched fixed-base
# BN254 multiplication) and the multi-core Groth16 prover (backend `mcl`); circomlib's Poseidon
# with the packed commitments of splitverify.commit (the statements of every step), on its own
# field arithmetic. And the build step that ships the data: the Circom templates, the ledger
# contract and the npm toolchain's package.json and lock go into the wheel as splitverify/_data/
# (splitverify.resources reads them there; an editable install reads the checkout's circuits/,
# contracts/ and top-level package files instead). Everything else is declared in pyproject.toml.
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# folder in the checkout → the files of it a wheel ships (the same name under splitverify/_data)
SHIPPED_DATA = {"circuits": ["*.circom"], "contracts": ["SplitLedger.sol", "build/*.json"]}
# files at the checkout's top level → the folder under splitverify/_data they are shipped in: the
# pinned npm toolchain's manifest and lock, which `splitverify toolchain install` runs `npm ci` on
SHIPPED_TOP_LEVEL = {"toolchain": ["package.json", "package-lock.json"]}


class BuildWithData(build_py):
    """build_py, plus the Circom templates and the contract copied into the built package."""

    def run(self):
        super().run()
        if self.editable_mode:     # the checkout's folders are read in place
            return
        shipped = [(ROOT / folder, folder, patterns) for folder, patterns in SHIPPED_DATA.items()]
        shipped += [(ROOT, folder, names) for folder, names in SHIPPED_TOP_LEVEL.items()]
        for source_dir, folder, patterns in shipped:
            for pattern in patterns:
                sources = sorted(source_dir.glob(pattern))
                if not sources:
                    raise FileNotFoundError(f"{source_dir.relative_to(ROOT) / pattern} matches "
                                            f"nothing in {ROOT}: build from a complete checkout")
                for source in sources:
                    target = Path(self.build_lib, "splitverify", "_data", folder,
                                  source.relative_to(source_dir))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)


setup(cmdclass={"build_py": BuildWithData},
      ext_modules=[Extension("splitverify.zk._fixedbase", ["splitverify/zk/_fixedbase.c"],
                             extra_compile_args=["-O3"]),
                   Extension("splitverify.zk._poseidon", ["splitverify/zk/_poseidon.c"],
                             extra_compile_args=["-O3"]),
                   Extension("splitverify.zk._mclprove", ["splitverify/zk/_mclprove.c"],
                             extra_compile_args=["-O3"], libraries=["pthread"])])
