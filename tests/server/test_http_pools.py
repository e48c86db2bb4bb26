"""Prover pools over real HTTP (the tiny model, the session's own key ceremony): both parties
prove on local worker processes, which are given the ceremony's keys; the client's pool is
closed when its training ends, the server's when the session is deleted."""

from __future__ import annotations

import pytest

from splitverify.pool.registry import PoolChoice
from splitverify_client import SplitClient
from splitverify_client.training import merged_transcript
from splitverify_server import create_app
from splitverify_server.loopback import ServerThread
from splitverify.transcript import Transcript, audit

from conftest import TINY_SPEC
from split_cases import data_batches


def test_a_session_proven_on_local_pools_over_http_audits_clean(tiny_circuits):
    pools = PoolChoice(provers=1)
    made = []

    def make(circuits):
        made.append(pools.make(circuits))
        return made[-1]

    app = create_app(prover_pool=make)
    with ServerThread(app) as thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, proof_mode="every",
                             prover_pool=make)
        client.create_session(seed=1)
        result = client.train(data_batches(TINY_SPEC, 2, 0), steps=2)
        server_transcript = Transcript.model_validate(client.server_transcript())
        server_pool = app.state.sessions[client.session_id].party.prover.pool
        client_pool = client.party.prover.pool
        # the client's pool was closed when its training ended; the server's still serves
        assert client_pool.workers == {} and client_pool.key_loads == 2
        assert server_pool.key_loads == 1 and set(server_pool.workers) == {0}
        client.delete_session()
        assert server_pool.workers == {}
    assert {id(server_pool), id(client_pool)} <= {id(pool) for pool in made}
    assert result.detected is None and result.steps == 2
    assert client.party.verifier.verified == 2
    report = audit(merged_transcript(client.party.transcript, server_transcript))
    assert report.valid and report.proofs_verified == 6, report


def test_bad_pool_flags_are_refused_before_any_session():
    from splitverify.errors import InputError

    with pytest.raises(InputError, match="--provers -2"):
        PoolChoice(provers=-2)
    with pytest.raises(InputError, match="--ray needs"):
        PoolChoice(ray="")
