# The compiled parts: the C helper of the development trusted setup (batched fixed-base BN254
# multiplication over mcl) and circomlib's Poseidon with the packed commitments of
# splitverify.commit (the statements of every step); everything else is in pyproject.toml.
from setuptools import Extension, setup

setup(ext_modules=[Extension("splitverify.zk._fixedbase", ["splitverify/zk/_fixedbase.c"],
                             extra_compile_args=["-O3"]),
                   Extension("splitverify.zk._poseidon", ["splitverify/zk/_poseidon.c"],
                             extra_compile_args=["-O3"])])
