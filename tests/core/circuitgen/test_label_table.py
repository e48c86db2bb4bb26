"""--labels server (issue 20, item 3): ServerStep takes each row's label from the server's
committed label table (a Poseidon Merkle tree) at the sample id the client named. Golden
against the reference, the loss equal to the client-labels step's, and the cheats: labels not
in the table, a wrong Merkle path, an id past the table, another table."""

from __future__ import annotations

import pytest
import torch

from splitverify import model, zk
from splitverify.circuitgen import SplitCircuits, generator
from splitverify.circuitgen import statements as st
from splitverify.errors import InputError, WitnessError
from splitverify.label_table import LabelTable, table_depth

from conftest import TINY_SPEC, tamper_witness, wire_of
from split_cases import CLIENT_SALTS, SERVER_SALTS, SESSION, STEP, table_case

pytestmark = pytest.mark.xdist_group("labeltable")

TABLE_SIZE = 5          # depth 3: positions 5..7 are padding


@pytest.fixture(scope="module")
def table_circuits(isolated_cache) -> SplitCircuits:
    return SplitCircuits(TINY_SPEC, label_table_depth=table_depth(TABLE_SIZE))


@pytest.fixture(scope="module")
def case(tiny_case):
    return table_case(tiny_case, TABLE_SIZE, seed=3)


@pytest.fixture(scope="module")
def honest_wtns(table_circuits, case, tmp_path_factory):
    return table_circuits.witness("server_step", case.inputs["server_step"],
                                  tmp_path_factory.mktemp("table") / "honest.wtns")


def test_table_reference():
    table = LabelTable(torch.tensor([1, 0, 1, 1, 0]), 2, salt=9)
    assert table.depth == 3 and len(table.levels) == 4
    assert table.levels[0] == [1, 0, 1, 1, 0, 2, 2, 2]   # padding: `classes`, no one-hot's leaf
    assert table.labels_at(torch.tensor([4, 2])).tolist() == [0, 1]
    assert LabelTable(torch.tensor([1, 0, 1, 1, 1]), 2, salt=9).commitment != table.commitment
    assert LabelTable(torch.tensor([1, 0, 1, 1, 0]), 2, salt=8).commitment != table.commitment
    with pytest.raises(InputError, match="sample ids"):
        table.labels_at(torch.tensor([5]))
    with pytest.raises(InputError, match="table labels"):
        LabelTable(torch.tensor([0, 2]), 2, salt=1)


def test_default_circuits_do_not_change(tiny_circuits):
    """Without a table the generator emits what it always did (golden tests hold the rest)."""
    for kind in generator.KINDS:
        assert "labels.circom" not in tiny_circuits.source(kind)
        assert "MerkleRoot" not in tiny_circuits.source(kind)


def test_a_negative_depth_is_refused():
    with pytest.raises(InputError, match="depth"):
        generator.generate(TINY_SPEC, "client_forward", label_table_depth=-1)


@pytest.mark.parametrize("kind", ["client_forward", "client_backward"])
def test_client_circuits_with_ids_equal_the_reference(kind, table_circuits, case, tmp_path):
    """The client's circuits commit the rows' sample ids where they committed labels: no label
    in any client statement or witness."""
    assert "labels" not in case.inputs[kind] and "ids" in case.inputs[kind]
    wtns = table_circuits.witness(kind, case.inputs[kind], tmp_path / f"{kind}.wtns")
    assert table_circuits.statement_of(kind, wtns).values == case.statements[kind].values


def test_an_id_past_the_depth_cannot_be_committed(table_circuits, case, tmp_path):
    ids = list(case.inputs["client_forward"]["ids"])
    ids[0] = 1 << case.table.depth
    with pytest.raises(WitnessError, match="Num2Bits"):
        table_circuits.witness("client_forward", {**case.inputs["client_forward"], "ids": ids},
                               tmp_path / "wide-id.wtns")


def test_table_step_equals_the_reference(table_circuits, case, honest_wtns):
    got = table_circuits.statement_of("server_step", honest_wtns)
    assert got.values == case.statements["server_step"].values
    # same labels as the client-labels step, so the same loss, update and gradient, bit for bit
    client_mode = case.base.statements["server_step"].values
    for name in ("loss", "weightsBefore", "weightsAfter", "gradientCommitment"):
        assert got.values[name] == client_mode[name], name
    assert got.values["messageCommitment"] != client_mode["messageCommitment"]


def test_labels_not_in_the_table_cannot_be_witnessed(table_circuits, case, tmp_path):
    """A server that runs its step (honestly) on other labels than the table's at those ids."""
    base = case.base
    other = (base.labels + 1) % base.spec.classes
    res = model.server_step(base.spec, base.server, base.forward.output, other)
    inputs = st.server_step_inputs(base.spec, base.server, base.forward.output, other,
                                   CLIENT_SALTS.message, res, SERVER_SALTS, SESSION, STEP)
    inputs.update({k: case.inputs["server_step"][k] for k in ("ids", "labelRoot", "labelSalt",
                                                "labelSiblings")})
    with pytest.raises(WitnessError, match="ServerStep"):
        table_circuits.witness("server_step", inputs, tmp_path / "other-labels.wtns")


def test_a_wrong_path_cannot_be_witnessed(table_circuits, case, tmp_path):
    siblings = [row[:] for row in case.inputs["server_step"]["labelSiblings"]]
    siblings[0][1] += 1
    with pytest.raises(WitnessError, match="ServerStep"):
        table_circuits.witness("server_step",
                               {**case.inputs["server_step"], "labelSiblings": siblings},
                               tmp_path / "wrong-path.wtns")
    # another row's id with the batch row's path (and label)
    ids = list(case.inputs["server_step"]["ids"])
    ids[0] = next(i for i in range(TABLE_SIZE) if i not in ids)
    with pytest.raises(WitnessError, match="ServerStep"):
        table_circuits.witness("server_step", {**case.inputs["server_step"], "ids": ids},
                               tmp_path / "wrong-id.wtns")


def test_an_id_past_the_table_cannot_be_witnessed(table_circuits, case, tmp_path):
    """Padding leaves hold `classes`: no one-hot label reaches them, whatever the path."""
    padded = TABLE_SIZE + 1
    ids = list(case.inputs["server_step"]["ids"])
    ids[0] = padded
    siblings = [row[:] for row in case.inputs["server_step"]["labelSiblings"]]
    table = case.table
    siblings[0] = [table.levels[level][(padded >> level) ^ 1] for level in range(table.depth)]
    with pytest.raises(WitnessError, match="ServerStep"):
        table_circuits.witness("server_step", {**case.inputs["server_step"], "ids": ids,
                                               "labelSiblings": siblings},
                               tmp_path / "padded.wtns")


def test_a_server_with_another_table_is_detected(table_circuits, case, tmp_path):
    """A server that proves against a table of its choosing (other labels at the ids): the
    proof's statement names another table commitment than the session's, so the client's
    expected statement does not hold."""
    base = case.base
    other = LabelTable((case.table.labels + 1) % base.spec.classes, base.spec.classes,
                       case.table.salt)
    res = model.server_step(base.spec, base.server, base.forward.output,
                            other.labels_at(case.ids))
    inputs = st.server_step_table_inputs(base.spec, base.server, base.forward.output, case.ids,
                                         other, CLIENT_SALTS.message, res, SERVER_SALTS,
                                         SESSION, STEP)
    got = table_circuits.statement_of("server_step", table_circuits.witness(
        "server_step", inputs, tmp_path / "other-table.wtns"))
    assert got.values["labelTable"] != case.statements["server_step"].values["labelTable"]
    assert got.values != case.statements["server_step"].values


@pytest.mark.parametrize("signal", ["labels[0][0]", "labelSiblings[1][2]", "ids[1]",
                                    "labelRoot"])
def test_a_tampered_witness_fails_the_constraints(table_circuits, honest_wtns, signal,
                                                  tmp_path):
    circuit = table_circuits.circuit("server_step")
    assert zk.check_witness(circuit, honest_wtns)[0]
    wire = wire_of(circuit, signal)
    honest = zk.read_witness(honest_wtns)[wire]
    ok, _report = tamper_witness(circuit, honest_wtns, wire, honest + 1, tmp_path / "t.wtns")
    assert not ok


@pytest.mark.parametrize("kind", generator.KINDS)
def test_cost_model_equals_the_compiled_table_circuits(kind, table_circuits):
    breakdown = generator.cost_breakdown(TINY_SPEC, kind, table_circuits.label_table_depth)
    assert sum(breakdown.values()) == table_circuits.circuit(kind).info.n_constraints
