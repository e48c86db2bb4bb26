"""The server's limits (``create_app(limits=…)``, ``splitverify serve --max-…``), in a module of
their own so the command line can show the defaults without importing the server."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import InputError


@dataclass(frozen=True)
class Limits:
    """What one server accepts. Each bounds memory or work a client could otherwise make the
    server spend; a request past one is refused with a 4xx naming it, before anything changes."""
    body_bytes: int = 8 << 20      # a JSON request (a RefNet step's message is a few kB)
    key_bytes: int = 1 << 30       # an uploaded proving key (~100 MB for RefNet's 2^18 circuit)
    dim: int = 1024                # every layer width, and the batch
    params: int = 1 << 20          # the model's weights and biases, both halves together
    sessions: int = 1000           # sessions held, finished and stopped ones included
    steps: int = 100_000           # training steps per session
    nesting: int = 32              # JSON nesting depth (a message needs 3; parsers recurse per level)
    # the largest circuit a session's spec may need, by the generator's cost model: RefNet's
    # largest is 121,121 constraints (a 2^17 setup); a spec past it is refused before anything
    # is compiled
    constraints: int = 1 << 18
    client_sessions: int = 10      # sessions one source address may create per client_window
    client_window: int = 600       # seconds
    idle_seconds: int = 3600       # a session without a request for this long is removed

    def __post_init__(self):
        for name, value in asdict(self).items():
            if value < 1:
                raise InputError(f"limit {name} must be ≥ 1, not {value}")
