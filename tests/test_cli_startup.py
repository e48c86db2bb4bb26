"""The `splitverify` command starts light (issue 16): importing it and building the help of every
command — the ones each installed distribution registers included, with the --malicious help
listing the tamper scenarios — loads neither torch nor the server stack."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from splitverify.protocol import scenario_catalog, scenarios

BUILD_EVERY_HELP = """
import json, sys
import typer.main
from typer.testing import CliRunner
import splitverify.cli

def paths(command, path=()):
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from paths(sub, (*path, name))

runner, shown = CliRunner(), {}
for path in paths(typer.main.get_command(splitverify.cli.app)):
    run = runner.invoke(splitverify.cli.app, [*path, "--help"], terminal_width=400,
                        env={"COLUMNS": "400"})
    shown[" ".join(path)] = (run.exit_code, run.output)
heavy = sorted(m for m in ("torch", "fastapi", "uvicorn", "splitverify.protocol.parties")
               if m in sys.modules)
with open(sys.argv[1], "w") as out:
    json.dump({"heavy": heavy, "helps": shown}, out)
"""


def test_building_every_help_loads_no_torch(tmp_path):
    out = tmp_path / "helps.json"
    run = subprocess.run([sys.executable, "-c", BUILD_EVERY_HELP, str(out)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert result["heavy"] == [], f"building the help imported {result['heavy']}"
    helps = result["helps"]
    assert {"demo", "train", "serve", "bench", "compare", "audit", "zk prove"} <= set(helps)
    assert all(code == 0 for code, _ in helps.values()), helps
    shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", helps["demo"][1]).split())   # no box drawing
    assert all(f"{d.name} ({d.description})" in shown for d in scenario_catalog.DECLARED)


def test_the_declared_scenarios_are_the_registered_classes():
    """The light declarations and the party classes name the same scenarios, sides alike."""
    declared = {(d.name, d.side, d.description, d.needs_proofs)
                for d in scenario_catalog.DECLARED}
    classed = {(s.name, s.party.role, s.description, s.needs_proofs)
               for s in scenarios.all_scenarios()}
    assert declared == classed and len(classed) == len(scenario_catalog.DECLARED)
