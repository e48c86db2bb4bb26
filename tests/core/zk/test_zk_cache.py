"""The artifact cache: repeated compiles and setups do no work (read from the cache's record,
not from timing), keys follow the source, and concurrent processes build an entry once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

from conftest import MATMUL2

from splitverify import zk
from splitverify.zk.cache import ENV_CACHE

REPO = Path(__file__).resolve().parents[3]


def fresh_circuit(directory: Path) -> Path:
    """A matmul2 circuit whose source (and so cache key) no earlier call has seen."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "matmul2.circom"
    path.write_text(f"// fresh {uuid.uuid4().hex}\n{MATMUL2}")
    return path


def events(kind: str, key: str) -> list[str]:
    return [e["event"] for e in zk.ArtifactCache().events(kind, key)]


def test_cache_is_the_session_tmp_dir(isolated_cache: Path) -> None:
    assert os.environ[ENV_CACHE] == str(isolated_cache)
    assert zk.ArtifactCache().root == isolated_cache


def test_second_compile_does_no_work(tmp_path: Path) -> None:
    source = fresh_circuit(tmp_path / "c")
    first = zk.compile_circuit(source)
    assert events("circuit", first.key) == ["build"]
    second = zk.compile_circuit(source)
    assert second.key == first.key
    assert second.directory == first.directory
    assert events("circuit", first.key) == ["build", "hit"]


def test_second_initial_key_does_no_work(tmp_path: Path) -> None:
    circuit = zk.compile_circuit(fresh_circuit(tmp_path / "c"))
    first = zk.initial_key(circuit)
    setup_key = first.zkey.parent.name  # entries live at <cache>/setup/<key>/
    assert events("setup", setup_key) == ["build"]
    second = zk.initial_key(circuit)
    assert second.zkey == first.zkey
    assert second.blake2b == first.blake2b
    assert events("setup", setup_key) == ["build", "hit"]


def test_changing_the_source_gives_a_new_key(tmp_path: Path) -> None:
    source = fresh_circuit(tmp_path / "one")
    original = zk.compile_circuit(source)
    edited_dir = tmp_path / "two"
    edited_dir.mkdir()
    edited = edited_dir / source.name
    edited.write_text(source.read_text() + "// a comment changes nothing but the bytes\n")
    changed = zk.compile_circuit(edited)
    assert changed.key != original.key
    assert events("circuit", changed.key) == ["build"]
    assert changed.info == original.info  # same circuit, different source bytes


def test_same_source_in_another_folder_is_a_hit(tmp_path: Path) -> None:
    source = fresh_circuit(tmp_path / "one")
    original = zk.compile_circuit(source)
    copy_dir = tmp_path / "two"
    copy_dir.mkdir()
    (copy_dir / source.name).write_text(source.read_text())
    copy = zk.compile_circuit(copy_dir / source.name)
    assert copy.key == original.key
    assert events("circuit", original.key) == ["build", "hit"]


def test_changing_the_optimisation_flag_gives_a_new_key(tmp_path: Path) -> None:
    source = fresh_circuit(tmp_path / "c")
    o1 = zk.compile_circuit(source)
    o2 = zk.compile_circuit(source, optimize="O2")
    assert o2.key != o1.key
    assert events("circuit", o2.key) == ["build"]


_WORKER = textwrap.dedent("""
    import pathlib, sys, time
    from splitverify import zk
    source, ready, go = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    ready.touch()
    deadline = time.time() + 60
    while not go.exists():
        if time.time() > deadline:
            sys.exit("never got the go signal")
        time.sleep(0.005)
    circuit = zk.compile_circuit(source)
    key = zk.initial_key(circuit)
    print(circuit.key, key.zkey.parent.name, key.blake2b)
""")


def test_two_processes_compiling_at_once_build_once(tmp_path: Path, isolated_cache: Path) -> None:
    source = fresh_circuit(tmp_path / "c")
    go = tmp_path / "go"
    env = {**os.environ, ENV_CACHE: str(isolated_cache)}
    procs, readies = [], []
    for i in range(2):
        ready = tmp_path / f"ready{i}"
        readies.append(ready)
        procs.append(subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(source), str(ready), str(go)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        deadline = time.time() + 60
        while not all(r.exists() for r in readies) and time.time() < deadline:
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.01)
        go.touch()  # release both at once
        results = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, f"worker {p.pid} failed:\n{out}\n{err}"
    lines = [out.split() for out, _ in results]
    assert lines[0] == lines[1]  # same circuit key, same setup key, same zkey bytes
    circuit_key, setup_key, _blake = lines[0]

    for kind, key in (("circuit", circuit_key), ("setup", setup_key)):
        rows = zk.ArtifactCache().events(kind, key)
        assert sorted(r["event"] for r in rows) == ["build", "hit"], (kind, rows)
        assert rows[0]["event"] == "build"
        assert {r["pid"] for r in rows} == {p.pid for p in procs}
