# The C helper of the development trusted setup (batched fixed-base BN254 multiplication
# over mcl) is the only compiled part; everything else is declared in pyproject.toml.
from setuptools import Extension, setup

setup(ext_modules=[Extension("splitverify.zk._fixedbase", ["splitverify/zk/_fixedbase.c"],
                             extra_compile_args=["-O3"])])
