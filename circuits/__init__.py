"""Circom templates of splitverify, installed as ``splitverify.circuits`` (package data)."""

from pathlib import Path

CIRCUITS_DIR = Path(__file__).resolve().parent


def circuit_path(name: str) -> Path:
    return CIRCUITS_DIR / name
