"""Background proving yields the CPU to training: a pool's prover threads and worker processes
run at a lower scheduling priority (a higher nice value) than the party's own thread, so that
on a machine with as many busy provers as cores the training loop still gets a core when it
needs one (``pipelined:W``'s loop would otherwise wait for the scheduler, not for a proof).

Linux keeps a nice value per thread, and threads a prover starts inherit its value."""

from __future__ import annotations

import os
import threading

from .errors import InputError

# added to the party's own nice value: 10 gives a busy prover ~1/10 of the CPU weight of a
# normal thread when both want the same core (CFS weights 110 vs 1024)
DEFAULT_PROVER_NICE = 10


def check_nice(nice: int) -> int:
    if not 0 <= nice <= 19:
        raise InputError(f"prover nice value {nice}: give 0 (the party's priority) to 19 "
                         "(the lowest); it is added to the party's own nice value")
    return nice


def lower_this_thread(nice: int) -> None:
    """Add ``nice`` to the calling thread's nice value (capped at 19). Raising one's own nice
    value needs no privilege; where the platform has no per-thread priority this does nothing
    (the prover then competes with training as an equal)."""
    if nice == 0 or not hasattr(os, "setpriority"):
        return
    thread = threading.get_native_id()
    current = os.getpriority(os.PRIO_PROCESS, thread)
    os.setpriority(os.PRIO_PROCESS, thread, min(19, current + nice))
