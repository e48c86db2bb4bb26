"""API fuzzing (schemathesis) over the server's own OpenAPI schema, in process (ASGI): every
operation gets generated requests — valid and invalid bodies, path parameters and headers —
and every answer must be a non-5xx status the schema declares, with a body that matches it.

Requests go to real sessions with their token, to real sessions with a wrong token, with no
token, and to unknown sessions, in turn. Sessions are ``off`` mode with the operator's keys
(``ceremony=False``), so nothing is proven while fuzzing; a fresh session per case keeps one
case's tampering (a 409 stops a session) from hiding the paths behind it in the next.
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
from splitverify.server import create_app

from conftest import TINY_SPEC

pytestmark = pytest.mark.xdist_group("api")

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
# who sends each case, in turn (deterministic: the cases are generated with a fixed seed)
SENDERS = ("owner", "owner", "wrong token", "no token", "unknown session")
TINY_LAYERS = {"model": "layers", "batch": TINY_SPEC.batch, "proof_mode": "off",
               "client_layers": [[d.n_in, d.n_out, d.relu] for d in TINY_SPEC.client],
               "server_layers": [[d.n_in, d.n_out, d.relu] for d in TINY_SPEC.server]}
FUZZED: list[tuple[str, str, int]] = []      # (operation, sender, status) of every case sent


@pytest.fixture(scope="module")
def fuzz_app(tiny_keys):
    # the fuzzer's own POST /sessions may ask for proofs: those sessions get the tiny keys
    return create_app(lambda _spec: tiny_keys, ceremony=False,
                      limits=Limits(sessions=100_000))


@pytest.fixture(scope="module")
def fuzz_client(fuzz_app):
    with TestClient(fuzz_app) as client:
        yield client


@pytest.fixture(scope="module")
def senders():
    return itertools.cycle(SENDERS)


# the schema does not depend on the app's circuits, so it is read from an app made here (a lazy
# schema from a fixture, schemathesis.pytest.from_fixture, fails under pytest 9.2)
schema = schemathesis.openapi.from_dict(create_app(ceremony=False).openapi())


def new_session(client: TestClient) -> tuple[int, str]:
    created = client.post("/sessions", json=TINY_LAYERS)
    assert created.status_code == 201, created.text
    return created.json()["session_id"], created.json()["token"]


def address(case, sender: str, client: TestClient) -> None:
    """Point ``case`` at a session as ``sender`` would; the generated parameters stay for
    'unknown session' (and the fuzzer's own garbage ids, which must be 404 or 422)."""
    if case.path == "/sessions" and isinstance(case.body, dict) and sender == "owner":
        # a client that says who it is (a session that commits needs it), so the generated
        # bodies reach the paths behind that check too
        case.body = {**case.body, "client_identity": Identity.generate().address}
    if "session_id" not in (case.path_parameters or {}) or sender == "unknown session":
        return
    session_id, token = new_session(client)
    case.path_parameters["session_id"] = session_id
    headers = dict(case.headers or {})
    headers.pop("Authorization", None)
    if sender == "owner":
        headers["Authorization"] = f"Bearer {token}"
    elif sender == "wrong token":
        headers["Authorization"] = f"Bearer {new_session(client)[1]}"
    case.headers = headers
    if isinstance(case.body, dict) and "session_id" in case.body:
        # half the owner's messages name their own session, so the checks behind that one run
        case.body = {**case.body, "session_id": session_id}


def fuzz_operation(operation, app, client: TestClient, senders) -> None:
    """Generated cases of one operation (fixed seed), each sent by the next sender in turn."""
    @given(case=operation.as_strategy())
    @settings(max_examples=30, derandomize=True, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), database=None)
    def run(case) -> None:
        sender = next(senders)
        address(case, sender, client)
        response = case.call_and_validate(checks=CHECKS, app=app)
        FUZZED.append((f"{case.method.upper()} {case.path}", sender, response.status_code))
    run()


def test_no_operation_answers_5xx_or_off_schema(fuzz_app, fuzz_client, senders):
    """Every operation fuzzed in one test (one process, whatever the test scheduler does), then
    a check that the fuzzing really sent what it claims: every operation, every sender."""
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        fuzz_operation(operation, fuzz_app, fuzz_client, senders)
    sent = {op for op, _, _ in FUZZED}
    names = {f"{op.method.upper()} {op.path}" for op in operations}
    assert sent == names, names - sent
    assert {sender for _, sender, _ in FUZZED} == set(SENDERS)
    statuses = {status for _, _, status in FUZZED}
    assert max(statuses) < 500 and {200, 201, 401, 403, 404, 422} <= statuses, statuses
    print(f"\nfuzz cases sent: {len(FUZZED)} over {len(names)} operations; "
          f"statuses {sorted(statuses)}")
