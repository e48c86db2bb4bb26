"""A client as its own process, for the client crash tests: trains the tiny model against a
server with its state in a folder (resuming the session there if there is one), and can kill
itself with SIGKILL at its Nth HTTP request — just before sending it, just after its answer
arrived (the server acted, the client never learns it), or a given time after that.

    python tests/client_process.py URL FOLDER STEPS SEED DATA_SEED [N before|after|after+S]

Prints "ready" once its client exists (after a resumed ceremony, before a new session's), then
one JSON line with the outcome.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

import httpx

# Run as a script from tests/client/: the suite's shared helpers live one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import TINY_SPEC, Interposer
from split_cases import data_batches
from splitverify_client import SplitClient
from splitverify_client.state import StateFolder


def kill_at(n: int, when: str) -> Interposer:
    """SIGKILL at the n-th request: ``before`` it leaves, ``after`` its answer arrived, or
    ``after+S``: S seconds after its answer (a moment inside whatever follows: proving,
    saving, the next request)."""
    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def at(count: int, _request) -> None:
        if count != n:
            return
        if "+" in when:
            threading.Timer(float(when.split("+")[1]), die).start()
        else:
            die()
    return Interposer(**{when.split("+")[0]: at})


def main() -> None:
    url, folder, steps, seed, data_seed = sys.argv[1:6]
    transport = (kill_at(int(sys.argv[6]), sys.argv[7]) if len(sys.argv) > 6
                 else httpx.HTTPTransport())
    if StateFolder(folder).exists():
        client = SplitClient.resume(folder, retry_seconds=120, transport=transport)
        print("ready", flush=True)
    else:
        client = SplitClient(url, spec=TINY_SPEC, state_dir=folder, retry_seconds=120,
                             transport=transport)
        print("ready", flush=True)
        client.create_session(seed=int(seed))
    result = client.train(data_batches(TINY_SPEC, int(steps), int(data_seed)), int(steps))
    print(json.dumps({"steps": result.steps, "detected": result.detected is not None}),
          flush=True)


if __name__ == "__main__":
    main()
