"""The three distributions as a user installs them (issue 16): wheels of the core, the client and
the server built from a copy of the checkout, installed (not editable) into a fresh virtual
environment, run from a folder outside the checkout — the Circom templates and the ledger
contract come from inside the installed package, not from the checkout.

No network: the wheels are built with the project's own setuptools (no build isolation) and
installed without dependencies; the fresh environment sees the project's installed
dependencies through a plain path entry (so the editable installs there stay inactive)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from splitverify.circuitgen import KINDS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {"splitverify": ".", "splitverify_client": "client",
                 "splitverify_server": "server"}
COMMANDS = ("demo", "serve", "train", "audit", "circuits", "bench", "compare", "zk")
# what setuptools prints when it warns (its warning classes, and the banner around them)
SETUPTOOLS_WARNING = re.compile(r"\w*Warning\b|^!!$", re.M)


def run(*args: str | Path, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, **kwargs)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory, tiny_circuits) -> dict:
    """Wheels built from the checkout's files (as a clean clone has them), installed into a fresh
    venv; the tiny model's circuits compiled into the session's cache first (compiling is not
    what is tested; the installed templates hash the same, so they are found there)."""
    for kind in KINDS:
        tiny_circuits.circuit(kind)
    root = tmp_path_factory.mktemp("packaging")
    source = root / "checkout"
    tracked = run("git", "ls-files", "--cached", "--others", "--exclude-standard",
                  cwd=REPO).stdout.split()
    for name in tracked:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    # the server's wheel ships the dashboard's charting library from the checkout's npm install
    (source / "node_modules").symlink_to(REPO / "node_modules")
    wheels = root / "wheels"
    build = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "--verbose", "--wheel-dir", wheels,
                *(source / folder for folder in DISTRIBUTIONS.values()), cwd=root)
    venv = root / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    install = run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
                  "--no-deps", "--no-index", *sorted(wheels.glob("*.whl")), cwd=root)
    site = Path(run(venv / "bin" / "python", "-c",
                    "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    (site / "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    workdir = root / "elsewhere"
    workdir.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
               SPLITVERIFY_NODE_MODULES=str(REPO / "node_modules"))
    return {"build": build.stdout + build.stderr, "install": install.stdout + install.stderr,
            "wheels": wheels, "venv": venv, "site": site, "cwd": workdir, "env": env}


def test_building_and_installing_print_no_warnings(installed):
    assert not SETUPTOOLS_WARNING.findall(installed["build"]), installed["build"][-6000:]
    assert "warning" not in installed["install"].lower(), installed["install"]


def test_the_wheels_carry_the_data_and_the_client_no_server_stack(installed):
    wheel = {path.name.split("-")[0]: path for path in installed["wheels"].glob("*.whl")}
    assert set(wheel) == set(DISTRIBUTIONS)
    with zipfile.ZipFile(wheel["splitverify"]) as core:
        names = core.namelist()
    shipped = {Path(name).name for name in names if name.startswith("splitverify/_data/")}
    assert {path.name for path in (REPO / "circuits").glob("*.circom")} <= shipped
    assert {"SplitLedger.sol", "SplitLedger.json"} <= shipped
    assert {"package.json", "package-lock.json"} <= shipped      # for `splitverify toolchain install`
    assert not [name for name in names if name.split("/")[0] not in ("splitverify",)
                and ".dist-info/" not in name], names
    with zipfile.ZipFile(wheel["splitverify_client"]) as client:
        metadata = next(client.read(name).decode() for name in client.namelist()
                        if name.endswith(".dist-info/METADATA"))
    requires = re.findall(r"^Requires-Dist: ([\w-]+)", metadata, re.M)
    assert "splitverify" in requires and "httpx" in requires
    assert not {"fastapi", "uvicorn", "splitverify-server"} & set(requires), requires


def test_the_server_wheel_carries_the_dashboard_and_its_pinned_charting_library(installed):
    from splitverify_server.dashboard import assets

    wheel = next(installed["wheels"].glob("splitverify_server-*.whl"))
    with zipfile.ZipFile(wheel) as server:
        names = set(server.namelist())
    vendored = {f"splitverify_server/_vendor/uplot/{name}" for name in
                ("package.json", "LICENSE", "dist/uPlot.iife.min.js", "dist/uPlot.min.css")}
    assert vendored | {"splitverify_server/dashboard/static/dashboard.js",
                       "splitverify_server/dashboard/static/dashboard.css"} <= names, names
    found = run(installed["venv"] / "bin" / "python", "-c",
                "from splitverify_server.dashboard import assets; print(assets.uplot_dir()); "
                "print(len(assets.asset('uPlot.iife.min.js')[0]))",
                cwd=installed["cwd"], env=installed["env"]).stdout.split()
    assert found[0] == str(installed["site"] / "splitverify_server" / "_vendor" / "uplot")
    assert int(found[1]) == (assets.uplot_dir() / "dist" / "uPlot.iife.min.js").stat().st_size


def test_installed_command_lists_every_distribution_s_commands(installed):
    help_text = run("splitverify", "--help", cwd=installed["cwd"], env=installed["env"]).stdout
    assert [name for name in COMMANDS if f" {name} " in help_text] == list(COMMANDS)


def test_installed_demo_without_proofs(installed):
    out = installed["cwd"] / "demo"
    run("splitverify", "demo", "--steps", "1", "--proof-mode", "off", "--out", out,
        cwd=installed["cwd"], env=installed["env"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 1 and not summary["detected"]


# The client's side of a session against a server in a thread, over loopback HTTP, with every
# message proven (the SDK: `train --insecure-dev-ptau` against `serve --insecure-dev-ptau` is
# refused, the server announcing no ptau, and the two-party phase 1 costs ~20 s).
EVERY_SESSION = """
import json, sys
from pathlib import Path
import splitverify, splitverify_client, splitverify_server
from splitverify.model import Dense, SplitSpec
from splitverify.resources import CIRCUITS_DIR, CONTRACTS_DIR
from splitverify.protocol import ProofMode
from splitverify_client.training import run_training
from splitverify_server import create_app
from splitverify_server.loopback import ServerThread

spec = SplitSpec((Dense(4, 3, True),), (Dense(3, 2, False),), batch=2)
with ServerThread(create_app()) as server:
    summary = run_training(server.url, 1, ProofMode.parse("every"), Path(sys.argv[1]), lambda done: None,
                           spec=spec)
print(json.dumps({"summary": summary, "paths": [
    *(m.__file__ for m in (splitverify, splitverify_client, splitverify_server)),
    str(CIRCUITS_DIR), str(CONTRACTS_DIR)]}))
"""


def test_installed_session_with_every_proof(installed):
    """A tiny model, every message proven: the packages and their data come from the venv,
    the circuits are generated over the installed templates and the parties' keys come from
    the session's ceremony."""
    out = installed["cwd"] / "every"
    proc = run(installed["venv"] / "bin" / "python", "-c", EVERY_SESSION, out,
               cwd=installed["cwd"], env=installed["env"])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    paths, summary = result["paths"], result["summary"]
    assert all(Path(path).is_relative_to(installed["site"]) for path in paths), paths
    assert paths[-2:] == [str(installed["site"] / "splitverify" / "_data" / name)
                          for name in ("circuits", "contracts")]
    assert summary["steps"] == 1 and summary["verified"] and not summary["detected"]
    assert summary["proofs_verified"]["client"] >= 1 and summary["proofs_verified"]["server"] >= 1
    assert (out / "transcript.json").is_file()


def test_toolchain_install_into_the_user_cache(installed, tmp_path):
    """Without a checkout a proof has no toolchain and says which command installs one; `npm ci`
    on the wheel's own package.json and lock (from the npm registry, ~20 s) into the user cache
    then gives one that compiles a circuit."""
    env = {key: value for key, value in installed["env"].items() if key != "SPLITVERIFY_NODE_MODULES"}
    env["SPLITVERIFY_CACHE"] = str(tmp_path / "user-cache")
    matmul = installed["site"] / "splitverify" / "_data" / "circuits" / "matmul.circom"
    compile_matmul = ["splitverify", "zk", "compile", matmul, "--template", "MatMul",
                      "-p", "2", "-p", "2", "-p", "2"]
    before = subprocess.run([str(a) for a in compile_matmul], capture_output=True, text=True,
                            cwd=installed["cwd"], env=env, timeout=120)
    assert before.returncode == 1, before.stdout + before.stderr
    assert "splitverify toolchain install" in " ".join(before.stderr.split())
    install = run("splitverify", "toolchain", "install", cwd=installed["cwd"], env=env)
    node_modules = next((tmp_path / "user-cache" / "toolchain").glob("*/node_modules"))
    assert "snarkjs 0.7.6" in install.stderr and str(node_modules) in install.stderr.replace("\n", "")
    again = run("splitverify", "toolchain", "install", cwd=installed["cwd"], env=env)
    assert "already installed" in again.stderr
    compiled = run(*compile_matmul, cwd=installed["cwd"], env=env)
    assert "constraints" in compiled.stdout
