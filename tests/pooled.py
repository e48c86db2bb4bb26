"""What the prover-pool tests share: waiting on a worker, and a tiny ``every`` session whose
parties prove on given pools, checked against the same session without proofs."""

from __future__ import annotations

import time
from typing import Callable

import torch

from splitverify.protocol import ClientParty, ProofMode, ServerParty, random_field, run_local

from conftest import TINY_SPEC
from split_cases import data_batches, random_case


def wait_for(condition, what: str, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return value


def session_on_pools(keys, pools: list, while_open: Callable[[list], None] = lambda _p: None
                     ) -> None:
    """Two tiny ``every`` steps with the client proving on ``pools[0]`` and the server on
    ``pools[1]`` (closed afterwards; ``while_open`` checks them before): every proof verifies
    and both halves end exactly where the same steps without proofs end."""
    data = data_batches(TINY_SPEC, 2, seed=3)
    case = random_case(TINY_SPEC, seed=11)
    session, mode = random_field(), ProofMode.parse("every")
    try:
        client = ClientParty(TINY_SPEC, session, mode, case.client, keys, pool=pools[0])
        server = ServerParty(TINY_SPEC, session, mode, case.server, keys, pool=pools[1])
        result = run_local(client, server, data)
        while_open(pools)
    finally:
        for pool in pools:
            pool.close()
    assert result.detected is None and result.steps == 2
    assert client.verifier.verified == 2 and server.verifier.verified == 4
    plain_client = ClientParty(TINY_SPEC, session, ProofMode.parse("off"), case.client, keys)
    plain_server = ServerParty(TINY_SPEC, session, ProofMode.parse("off"), case.server, keys)
    run_local(plain_client, plain_server, data)
    for a, b in zip(client.params + server.params, plain_client.params + plain_server.params):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
