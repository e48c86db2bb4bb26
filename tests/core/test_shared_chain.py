"""A client's check of a shared server half's published chain
(``splitverify.shared_chain.check_served``), on chains made by hand: an honest extension passes;
a rewritten history, a step left out, a step that does not start from the published head, or
one published with other values than were served, is tampering at that step."""

from __future__ import annotations

import pytest

from splitverify.errors import TamperDetected
from splitverify.shared_chain import chain_errors, check_served, statement_sha256

SESSION = 77


def server_step(step: int, before: int, after: int) -> dict[str, int]:
    return {"messageCommitment": 5 + step, "weightsBefore": before, "loss": 3,
            "weightsAfter": after, "gradientCommitment": 9, "session": SESSION, "step": step}


def chain_of(steps: list[tuple[str, int, dict[str, int]]]) -> dict:
    entries = [{"index": i, "session": session, "step": step,
                "weights_before": public["weightsBefore"], "weights_after": public["weightsAfter"],
                "statement_sha256": statement_sha256(public)}
               for i, (session, step, public) in enumerate(steps)]
    return {"initial_weights_commitment": 100, "head": entries[-1]["weights_after"],
            "entries": entries}


MINE_0, OTHER, MINE_1 = server_step(0, 100, 101), server_step(0, 101, 102), server_step(1, 102, 103)


def test_an_honest_chain_passes_and_is_remembered():
    first = chain_of([(str(SESSION), 0, MINE_0)])
    seen = check_served(first, None, SESSION, 0, MINE_0)
    later = chain_of([(str(SESSION), 0, MINE_0), ("8", 0, OTHER), (str(SESSION), 1, MINE_1)])
    assert chain_errors(later) is None
    assert check_served(later, seen, SESSION, 1, MINE_1)[0] == 3


def test_a_rewritten_history_is_a_fork():
    seen = check_served(chain_of([(str(SESSION), 0, MINE_0)]), None, SESSION, 0, MINE_0)
    # another step 0 for this session, then a chain that goes on from it: linked, but not the
    # chain this client saw
    other_0 = server_step(0, 100, 201)
    forked = chain_of([(str(SESSION), 0, other_0), ("8", 0, server_step(0, 201, 102)),
                       (str(SESSION), 1, MINE_1)])
    with pytest.raises(TamperDetected, match="history was rewritten") as caught:
        check_served(forked, seen, SESSION, 1, MINE_1)
    assert (caught.value.step, caught.value.detected_by) == (1, "client")


@pytest.mark.parametrize("chain,reason", [
    # the step served is not published (the server kept it on a private fork)
    (chain_of([(str(SESSION), 0, MINE_0), ("8", 0, OTHER)]), "not in its published chain"),
    # published, but starting from other weights than the entry before ended with
    (chain_of([(str(SESSION), 0, MINE_0), (str(SESSION), 1, MINE_1)]),
     "does not start from the head published before it"),
    # published with other values than the client was served
    (chain_of([(str(SESSION), 0, MINE_0), ("8", 0, OTHER),
               (str(SESSION), 1, server_step(1, 102, 999))]), "differs from entry 2"),
])
def test_a_step_served_off_the_published_chain_is_caught(chain, reason):
    seen = check_served(chain_of([(str(SESSION), 0, MINE_0)]), None, SESSION, 0, MINE_0)
    with pytest.raises(TamperDetected, match=reason):
        check_served(chain, seen, SESSION, 1, MINE_1)
