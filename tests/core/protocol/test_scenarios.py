"""The tamper scenarios' registry (splitverify.protocol.scenarios): every registered scenario is
offered by the CLI's --malicious help, runs on the tiny model and is caught where the README
says; the cheats live outside the honest parties, which only expose the hooks they override."""

from __future__ import annotations

import inspect
import re

import pytest
from typer.testing import CliRunner

import splitverify_client.sdk as client_sdk
import splitverify_server.service as server_app
from splitverify.cli import app
from splitverify.errors import InputError
from splitverify.protocol import (ClientParty, ProofMode, ServerParty, parties, random_field,
                                  run_local, scenarios)

from conftest import TINY_SPEC
from split_cases import data_batches, random_case

# where README.md ("What it shows", the compare section) says each scenario is caught: per proof
# mode, (step, detecting party), or None when the mode cannot catch it (the consistent cheats
# under commitments alone) or it does not apply (a forged proof needs proofs). A new scenario
# adds its row here.
CAUGHT = {
    "server:wrong-gradient": {"every": (0, "client"), "commit": None},
    "server:forged-proof": {"every": (0, "client"), "commit": None},
    "server:skip-update": {"every": (1, "client"), "commit": (1, "client")},
    "client:poisoned-activation": {"every": (0, "server"), "commit": None},
    "client:replay": {"every": (1, "server"), "commit": (1, "server")},
    # only a shared server half has a published chain to fork from: a session with a server
    # half of its own runs honestly; with a shared one each served client catches it at its
    # step 1 (tests/server/test_shared_model.py)
    "server:forked-model": {"every": None, "commit": None},
    # only a server holding a label table (--labels server) has labels to swap: with the labels
    # at the client the run is honest; with a table the client catches it at step 0 when proofs
    # run (tests/core/protocol/test_label_table_protocol.py)
    "server:wrong-labels": {"every": None, "commit": None},
    # only rounds of averaged client halves (--aggregate every:R) send an average: without them
    # the run is honest; with them the client sent it catches it at the round's last step when
    # proofs run (tests/core/protocol/test_aggregation.py)
    "server:wrong-average": {"every": None, "commit": None},
}
HOOKS = {"outgoing_activations", "outgoing_forward", "outgoing_gradient", "outgoing_proof",
         "next_params", "step_from", "publishes_step", "step_table", "outgoing_average"}


def flat(text: str) -> str:
    """Help text without its box drawing and line breaks (rich wraps it to the terminal)."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.mark.parametrize("command", ["demo", "serve", "train"])
def test_every_scenario_is_in_the_malicious_help(command):
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=400,
                                env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    shown = flat(result.output)
    for found in scenarios.all_scenarios():
        assert f"{found.name} ({found.description})" in shown, (command, found.name)


def test_the_registry_names_sides_and_refuses_unknown_names():
    assert set(CAUGHT) == set(scenarios.names()), "a registered scenario has no expectation"
    for side in ("client", "server"):
        mine = scenarios.for_side(side)
        assert mine and all(s.side == side and s.name.startswith(f"{side}:") for s in mine)
        honest = ClientParty if side == "client" else ServerParty
        for found in scenarios.all_scenarios():
            played = scenarios.party_class(side, found.name)
            assert played is (found.party if found.side == side else honest)
            assert issubclass(played, honest)
        assert scenarios.party_class(side, None) is honest
    with pytest.raises(InputError, match="unknown scenario 'client:nothing'; one of"):
        scenarios.get("client:nothing")
    with pytest.raises(InputError, match="server:skip-update is a server scenario"):
        scenarios.require_side("server:skip-update", "client")


def test_the_honest_parties_hold_no_cheat():
    for module in (parties, server_app, client_sdk):
        source = inspect.getsource(module)
        assert not re.search(r"malicious ?[!=]=|startswith\(f?\"(client|server|\{side\}):",
                             source), module.__name__
    assert "malicious" not in inspect.getsource(parties)
    for found in scenarios.all_scenarios():
        own = {name for name, value in vars(found.party).items() if callable(value)}
        # a cheat only overrides what the honest party sends
        assert own and own <= HOOKS, (found.name, own - HOOKS)


@pytest.fixture(scope="module")
def keyed(tiny_keys):
    return tiny_keys


@pytest.mark.parametrize("mode", ["every", "commit"])
@pytest.mark.parametrize("name", list(CAUGHT))
def test_each_scenario_runs_locally_and_is_caught_where_the_readme_says(keyed, name, mode):
    case, session = random_case(TINY_SPEC, seed=11), random_field()
    proof_mode = ProofMode.parse(mode)
    client = scenarios.party_class("client", name)(TINY_SPEC, session, proof_mode, case.client,
                                                   keyed)
    server = scenarios.party_class("server", name)(TINY_SPEC, session, proof_mode, case.server,
                                                   keyed)
    result = run_local(client, server, data_batches(TINY_SPEC, 3, seed=2))
    expected = CAUGHT[name][mode]
    if expected is None:
        assert result.detected is None and result.steps == 3, result.detected
        return
    assert result.detected is not None, name
    assert (result.detected.step, result.detected.detected_by) == expected, result.detected
    assert result.transcript.detected.detected_step == expected[0]
    assert result.summary()["reason"] == result.detected.reason
