"""The wire contract (splitverify.protocol.wire): a proof mode is parsed once where its text
enters and travels as the same text; the "session stopped" record has one shape (older records
still read); the client parses the server's answers with the contract's models, and a malformed
answer is an error naming the field."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from splitverify_client import SplitClient
from splitverify_server import create_app
from splitverify.errors import InputError, MalformedAnswer, TamperDetected
from splitverify.limits import Limits
from splitverify.protocol import ProofMode, SessionCreate, SessionStatus, StopRecord

from conftest import TINY_SPEC


@pytest.mark.parametrize("text", ["every", "off", "commit", "audit:0.25"])
def test_a_proof_mode_field_holds_the_parsed_mode_and_writes_its_text(text):
    request = SessionCreate.of(TINY_SPEC, ProofMode.parse(text), seed=1)
    assert request.model_dump()["proof_mode"] == text
    again = SessionCreate.model_validate_json(request.model_dump_json())
    assert again.proof_mode == ProofMode.parse(text) and str(again.proof_mode) == text
    assert SessionCreate().proof_mode == ProofMode.parse("every")
    schema = SessionCreate.model_json_schema()["properties"]["proof_mode"]
    assert (schema["type"], schema["default"]) == ("string", "every")
    assert all(str(ProofMode.parse(example)) == example for example in schema["examples"])
    # the OpenAPI document (responses serialize it) shows it as text too
    assert create_app().openapi()["components"]["schemas"]["SessionStatus"]["properties"][
        "proof_mode"]["type"] == "string"


@pytest.mark.parametrize("bad", ["sometimes", "audit:0", "audit:x", 3])
def test_a_bad_proof_mode_is_refused_naming_the_field(bad):
    with pytest.raises(ValidationError) as caught:
        SessionCreate(proof_mode=bad)
    assert caught.value.errors()[0]["loc"] == ("proof_mode",)
    assert "proof mode" in str(caught.value)


def test_the_stop_record_has_one_shape_and_reads_the_older_one():
    record = StopRecord.of(TamperDetected(2, "client", "forged proof"))
    assert record.model_dump() == {"detected_step": 2, "detected_by": "client",
                                   "reason": "forged proof"}
    older = StopRecord.model_validate({"step": 2, "detected_by": "client",
                                       "reason": "forged proof"})
    assert older == record
    error = record.error()
    assert (error.step, error.detected_by, error.reason) == (2, "client", "forged proof")
    with pytest.raises(ValidationError):
        StopRecord.model_validate({"detected_by": "client", "reason": "no step"})


def answering(routes: dict[tuple[str, str], tuple[int, object]]) -> httpx.MockTransport:
    """A server that answers each (method, path) with a fixed status and JSON body: what a
    server of another version, or a hostile one, may send."""
    def handle(request: httpx.Request) -> httpx.Response:
        status, body = routes[(request.method, request.url.path)]
        return httpx.Response(status, json=body)
    return httpx.MockTransport(handle)


def test_the_client_names_the_field_of_a_malformed_answer():
    client = SplitClient("http://server", spec=TINY_SPEC, proof_mode="off",
                         transport=answering({("POST", "/sessions"): (201, {"token": "t"})}))
    with pytest.raises(MalformedAnswer, match="SessionCreated.*session_id.*Field required"):
        client.create_session(seed=1)


def test_a_status_answer_is_parsed_into_the_contract():
    status = {"session_id": 7, "next_step": 1, "proof_mode": "audit:0.5", "proofs_verified": 2,
              "challenged": 1, "losses": [5], "prove_s": {}, "verify_s": {}, "idle_expiry_s": 60,
              "stopped": {"detected_step": 0, "detected_by": "server", "reason": "replay"}}
    client = SplitClient("http://server", spec=TINY_SPEC, proof_mode="off",
                         transport=answering({("GET", "/sessions/0"): (200, status)}))
    parsed = client.status()
    assert isinstance(parsed, SessionStatus) and parsed.proof_mode == ProofMode.parse("audit:0.5")
    assert parsed.stopped == StopRecord(detected_step=0, detected_by="server", reason="replay")
    assert client.server_status() == status
    bad = SplitClient("http://server", spec=TINY_SPEC, proof_mode="off",
                      transport=answering({("GET", "/sessions/0"): (
                          200, {**status, "proof_mode": "sometimes"})}))
    with pytest.raises(MalformedAnswer, match="proof_mode"):
        bad.status()


def test_the_model_limits_come_from_the_asked_model_s_layers():
    """RefNet is held to the same limits as any model (64 wide, 2,410 parameters), and a
    'layers' model's size is its layers' (tiny: 4×3+3 and 3×2+2 = 23 parameters)."""
    refnet = SessionCreate(batch=4)
    refnet.within(Limits(dim=64, params=2410))
    with pytest.raises(InputError, match="≤ 63 .*got 64"):
        refnet.within(Limits(dim=63))
    with pytest.raises(InputError, match="2410 parameters; this server takes at most 2409"):
        refnet.within(Limits(params=2409))
    tiny = SessionCreate.of(TINY_SPEC, ProofMode.parse("off"), seed=1)
    assert tiny.spec() == TINY_SPEC
    tiny.within(Limits(dim=4, params=23))
    with pytest.raises(InputError, match="23 parameters; this server takes at most 22"):
        tiny.within(Limits(params=22))
    with pytest.raises(InputError, match="'layers' with client_layers"):
        SessionCreate(model="layers", client_layers=[(4, 3, True)]).within(Limits())


def test_the_reference_cnn_travels_by_name_and_other_conv_models_are_refused():
    from splitverify.model import Conv2d, Dense, SplitSpec
    cnn = SplitSpec.refcnn(batch=8)
    asked = SessionCreate.of(cnn, ProofMode.parse("off"), seed=1)
    assert asked.model == "cnn" and asked.spec() == cnn
    asked.within(Limits())                          # 64 wide in and out, 690 parameters
    with pytest.raises(InputError, match="other convolutional models are not yet supported"):
        SessionCreate.of(SplitSpec((Conv2d(1, 2, 3, 1, 1, 4, 4, True),),
                                   (Dense(32, 2, False),), batch=2),
                         ProofMode.parse("off"), seed=1)
