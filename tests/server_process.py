"""A server as its own process for the two-process tests, where the server must run test code:
``create_app`` with a tamper scenario, optionally behind a gateway that refuses one route.

    python tests/server_process.py PORT DB [SCENARIO|-] [REFUSED_PATH_SUFFIX STATUS]
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

# Run as a script from tests/: the suite's shared helpers sit beside it.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cheaters import AnswerOnPath  # noqa: E402
from splitverify.powersoftau import PtauPolicy  # noqa: E402
from splitverify_server import create_app  # noqa: E402


def main(port: str, db: str, malicious: str = "-", refused: str | None = None,
         status: str = "503") -> None:
    # the ptau as `serve` has it by default: the two-party phase 1 with each client
    app = create_app(db=db, malicious=None if malicious == "-" else malicious,
                     ptau=PtauPolicy.of_options(None, False))
    served = app if refused is None else AnswerOnPath(app, refused, int(status))
    uvicorn.run(served, host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    main(*sys.argv[1:])
