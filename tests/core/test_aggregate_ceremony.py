"""The Aggregate key's ceremony (splitverify.aggregate_ceremony), tiny model, K = 2: the server
then each client contributes, each signed; every client establishes the final key from the
record. A record without a client's contribution, a contribution signed by another identity,
a server that is not the pinned one or a key from another ceremony is refused, naming it."""

from __future__ import annotations

import copy

import pytest

from splitverify.aggregate_ceremony import (check_aggregate_key, client_contributes,
                                            server_begins)
from splitverify.circuitgen import AGGREGATE, SplitCircuits
from splitverify.identity import Identity
from splitverify.keyorigin import KeyRefused, sign_contribution

from conftest import TINY_SPEC

pytestmark = pytest.mark.xdist_group("aggregate")


def ceremony_of(server: Identity, clients: list[Identity], folder):
    circuits = SplitCircuits(TINY_SPEC, aggregate_clients=2)
    ceremony = server_begins(circuits, server, folder)
    for client in clients:
        client_contributes(ceremony, client)
    return circuits.verification_key(AGGREGATE).to_snarkjs(), ceremony.record()


@pytest.fixture(scope="module")
def parties():
    return Identity.generate(), [Identity.generate(), Identity.generate()]


@pytest.fixture(scope="module")
def honest(parties, tmp_path_factory):
    server, clients = parties
    return ceremony_of(server, clients, tmp_path_factory.mktemp("aggregate-ceremony"))


def test_each_client_establishes_the_key_from_the_signed_contributions(parties, honest):
    server, clients = parties
    vk, record = honest
    assert [c["name"] for c in record["contributions"]] == [
        server.address, *(c.address for c in clients)]
    for client in clients:
        assert check_aggregate_key(vk, record, server.address, client.address) == 2


def test_a_key_without_a_clients_contribution_is_refused_by_that_client(parties,
                                                                       tmp_path):
    server, (first, second) = parties
    vk, record = ceremony_of(server, [first], tmp_path)
    assert check_aggregate_key(vk, record, server.address, first.address) == 1
    with pytest.raises(KeyRefused, match=f"this client's \\({second.address}\\) signed "
                                         "contribution is missing"):
        check_aggregate_key(vk, record, server.address, second.address)


def test_a_contribution_signed_by_another_identity_is_refused(parties, honest):
    server, (first, second) = parties
    vk, record = honest
    forged = copy.deepcopy(record)
    entry = forged["contributions"][2]
    entry["signature"] = sign_contribution(Identity.generate(), record["run"], AGGREGATE, 3,
                                           second.address, entry["hash"])
    for client in (first, second):
        with pytest.raises(KeyRefused, match=f"#3 is not signed by the identity it names, "
                                             f"{second.address}"):
            check_aggregate_key(vk, forged, server.address, client.address)


def test_another_server_or_another_ceremonys_key_is_refused(parties, honest, tmp_path):
    server, clients = parties
    vk, record = honest
    with pytest.raises(KeyRefused, match="not the server's pinned identity"):
        check_aggregate_key(vk, record, Identity.generate().address, clients[0].address)
    other_vk, _ = ceremony_of(server, clients, tmp_path)
    with pytest.raises(KeyRefused, match="its δ is not the one the recorded contributions"):
        check_aggregate_key(other_vk, record, server.address, clients[0].address)
    dropped = copy.deepcopy(record)
    del dropped["contributions"][1]            # the first client's, the chain now broken
    with pytest.raises(KeyRefused):
        check_aggregate_key(vk, dropped, server.address, clients[1].address)
