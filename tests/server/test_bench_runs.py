"""The bench's interleaved medians: each function its own number of turns, in turns."""
from splitverify_server.apps.bench import IN_PROCESS_PROVE_RUNS, interleaved_medians, prove_runs


def test_each_function_runs_its_own_number_of_turns_taking_turns():
    order = []
    fns = {name: (lambda n=name: order.append(n)) for name in ("snarkjs", "native", "mcl")}
    medians = interleaved_medians(fns, {"snarkjs": 1, "native": 3, "mcl": 2})
    assert order == ["snarkjs", "native", "mcl", "native", "mcl", "native"]
    assert set(medians) == set(fns) and all(seconds >= 0 for seconds in medians.values())


def test_one_count_for_all():
    order = []
    interleaved_medians({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, 2)
    assert order == ["a", "b", "a", "b"]


def test_quick_mode_still_gives_the_in_process_provers_several_turns():
    assert prove_runs(1) == {"snarkjs": 1, "native": IN_PROCESS_PROVE_RUNS,
                             "mcl": IN_PROCESS_PROVE_RUNS}
    assert prove_runs(7) == {"snarkjs": 7, "native": 7, "mcl": 7}
