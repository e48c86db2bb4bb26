# The compiled parts: over mcl, the helper of the development trusted setup (batched fixed-base
# BN254 multiplication) and the multi-core Groth16 prover (backend `mcl`); circomlib's Poseidon
# with the packed commitments of splitverify.commit (the statements of every step), on its own
# field arithmetic. Everything else is declared in pyproject.toml.
from setuptools import Extension, setup

setup(ext_modules=[Extension("splitverify.zk._fixedbase", ["splitverify/zk/_fixedbase.c"],
                             extra_compile_args=["-O3"]),
                   Extension("splitverify.zk._poseidon", ["splitverify/zk/_poseidon.c"],
                             extra_compile_args=["-O3"]),
                   Extension("splitverify.zk._mclprove", ["splitverify/zk/_mclprove.c"],
                             extra_compile_args=["-O3"], libraries=["pthread"])])
