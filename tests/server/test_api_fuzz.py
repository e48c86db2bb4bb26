"""API fuzzing (schemathesis) over the server's own OpenAPI schema, in process (ASGI): every
operation gets generated requests — valid and invalid bodies, path parameters and headers —
and every answer must be a non-5xx status the schema declares, with a body that matches it.

Requests go to real sessions with their token, to real sessions with a wrong token, with no
token, and to unknown sessions, in turn. Sessions use the operator's keys (``ceremony=False``)
in each proof mode: ``off`` (plain split learning), ``every`` and ``audit:0.5`` (statements
checked, proofs verified or drawn on; nothing the fuzzer sends can be proven, so nothing is
proven while fuzzing); a fresh session per case keeps one case's tampering (a 409 stops a
session) from hiding the paths behind it in the next.
"""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                               response_headers_conformance,
                                               response_schema_conformance,
                                               status_code_conformance)

from splitverify.identity import Identity
from splitverify.limits import Limits
from splitverify.protocol import ClientParty, ProofMode
from splitverify.refnet import initial_params
from splitverify_server import create_app

from conftest import TINY_SPEC

pytestmark = pytest.mark.xdist_group("api")

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
# who sends each case, in turn (deterministic: the cases are generated with a fixed seed)
SENDERS = ("owner", "owner", "wrong token", "no token", "unknown session")
TINY_LAYERS = {"model": "layers", "batch": TINY_SPEC.batch, "proof_mode": "off",
               "client_layers": [[d.n_in, d.n_out, d.relu] for d in TINY_SPEC.client],
               "server_layers": [[d.n_in, d.n_out, d.relu] for d in TINY_SPEC.server]}
# per proof mode, the generated cases per operation (the committing modes add paths, not
# new request shapes: fewer cases keep the fuzzing's time modest)
MODES = {"off": 30, "every": 20, "audit:0.5": 20}
DECLARED = 1 << 200          # an initial weights commitment (a field element; never stepped on)


@pytest.fixture(scope="module")
def fuzz_app(tiny_keys):
    # the fuzzer's own POST /sessions may ask for proofs: those sessions get the tiny keys
    # (every case makes a session, all from the one test client's address)
    return create_app(lambda _spec: tiny_keys, ceremony=False,
                      limits=Limits(sessions=100_000, client_sessions=100_000))


@pytest.fixture(scope="module")
def fuzz_client(fuzz_app):
    with TestClient(fuzz_app) as client:
        yield client


@pytest.fixture
def senders():
    # a fresh cycle per test: each proof mode gets the same senders for the same cases
    return itertools.cycle(SENDERS)


# the schema does not depend on the app's circuits, so it is read from an app made here (a lazy
# schema from a fixture, schemathesis.pytest.from_fixture, fails under pytest 9.2)
schema = schemathesis.openapi.from_dict(create_app(ceremony=False).openapi())


def session_body(mode: str, keys) -> dict:
    """A session of ``mode``; a committing one names its client and declares a real initial
    weights commitment."""
    parsed = ProofMode.parse(mode)
    if not parsed.commits:
        return {**TINY_LAYERS, "proof_mode": mode}
    party = ClientParty(TINY_SPEC, 0, parsed, initial_params(TINY_SPEC, 0)[0], keys)
    return {**TINY_LAYERS, "proof_mode": mode, "client_identity": Identity.generate().address,
            "initial_weights_commitment": party.weights_commitment()}


def new_session(client: TestClient, body: dict) -> tuple[int, str]:
    created = client.post("/sessions", json=body)
    assert created.status_code == 201, created.text
    return created.json()["session_id"], created.json()["token"]


def address(case, sender: str, client: TestClient, body: dict) -> None:
    """Point ``case`` at a session (made from ``body``) as ``sender`` would; the generated
    parameters stay for 'unknown session' (and the fuzzer's own garbage ids, which must be 404
    or 422)."""
    if case.path == "/sessions" and isinstance(case.body, dict) and sender == "owner":
        # the owner says who it is and declares where its weights start (a committing session
        # needs both), so generated bodies reach the success path of session creation too
        case.body = {"initial_weights_commitment": DECLARED,
                     "client_identity": Identity.generate().address, **case.body}
    if "session_id" not in (case.path_parameters or {}) or sender == "unknown session":
        return
    session_id, token = new_session(client, body)
    case.path_parameters["session_id"] = session_id
    headers = dict(case.headers or {})
    headers.pop("Authorization", None)
    if sender == "owner":
        headers["Authorization"] = f"Bearer {token}"
    elif sender == "wrong token":
        headers["Authorization"] = f"Bearer {new_session(client, body)[1]}"
    case.headers = headers
    if isinstance(case.body, dict) and "session_id" in case.body:
        # half the owner's messages name their own session, so the checks behind that one run
        case.body = {**case.body, "session_id": session_id}


def fuzz_operation(operation, app, client: TestClient, senders, body: dict, examples: int,
                   fuzzed: list[tuple[str, str, int]]) -> None:
    """Generated cases of one operation (fixed seed), each sent by the next sender in turn to a
    session made from ``body``; (operation, sender, status) of each goes to ``fuzzed``."""
    @given(case=operation.as_strategy())
    @settings(max_examples=examples, derandomize=True, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), database=None)
    def run(case) -> None:
        sender = next(senders)
        address(case, sender, client, body)
        response = case.call_and_validate(checks=CHECKS, app=app)
        fuzzed.append((f"{case.method.upper()} {case.path}", sender, response.status_code))
    run()


@pytest.mark.parametrize("mode", MODES)
def test_no_operation_answers_5xx_or_off_schema(fuzz_app, fuzz_client, senders, tiny_keys,
                                                mode):
    """Every operation fuzzed in one test per proof mode (one process, whatever the test
    scheduler does), then a check that the fuzzing really sent what it claims: every
    operation, every sender."""
    operations = [result.ok() for result in schema.get_all_operations()]
    body, fuzzed = session_body(mode, tiny_keys), []
    for operation in operations:
        fuzz_operation(operation, fuzz_app, fuzz_client, senders, body, MODES[mode], fuzzed)
    sent = {op for op, _, _ in fuzzed}
    names = {f"{op.method.upper()} {op.path}" for op in operations}
    assert sent == names, names - sent
    assert {sender for _, sender, _ in fuzzed} == set(SENDERS)
    statuses = {status for _, _, status in fuzzed}
    assert max(statuses) < 500 and {200, 201, 401, 403, 404, 422} <= statuses, statuses
    if ProofMode.parse(mode).commits:
        # statements that do not match what was sent stop the session: the checks ran
        assert 409 in statuses, statuses
    print(f"\n{mode}: fuzz cases sent: {len(fuzzed)} over {len(names)} operations; "
          f"statuses {sorted(statuses)}")
