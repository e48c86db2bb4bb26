"""Each party's own half (the Flower-like surface) over real HTTP, the tiny model: the client
gives an nn.Sequential with its weights and a DataLoader and gets its trained half back as a
module; the server trains its own nn.Sequential, and refuses a session asking for another."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from splitverify.model import torch_io
from splitverify_client import ServerError, SplitClient
from splitverify_server import create_app
from splitverify_server.loopback import ServerThread

from conftest import TINY_SPEC
from split_cases import reference_weights, same_params


def halves() -> tuple[nn.Sequential, nn.Sequential]:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU()), nn.Sequential(nn.Linear(3, 2))


def test_both_parties_train_their_own_halves_and_the_client_gets_a_module_back(tiny_keys):
    client_half, server_half = halves()
    x, y = torch.rand(4, 4, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 1, 0])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=2)
    app = create_app(lambda _spec: tiny_keys, ceremony=False, server_model=server_half)
    with ServerThread(app) as thread:
        # the server half's shape only (other weights): the server's weights are its own
        client = SplitClient(thread.url, model=client_half,
                             server_layers=nn.Sequential(nn.Linear(3, 2)), batch=2,
                             circuits_for=lambda _s: tiny_keys)
        client.create_session(seed=4)
        result = client.train(loader, steps=2)
        server_params = app.state.sessions[client.session_id].party.params
    assert result.detected is None and result.steps == 2
    assert client.party.verifier.verified == 2         # every server step proven and verified
    q = TINY_SPEC.quant
    start = (torch_io.encode_half(q, client_half), torch_io.encode_half(q, server_half))
    batches = list(torch_io.fixed_point_batches(q, 2, loader))
    want_client, want_server = reference_weights(TINY_SPEC, 2, 0, batches, start=start)
    assert same_params(server_params, want_server)     # the server trained its own weights
    server_trained = app.state.service.server_half.trained(server_params)
    assert same_params(torch_io.encode_half(q, server_trained), want_server)
    trained = client.trained_model()
    assert isinstance(trained, nn.Sequential) and isinstance(trained[1], nn.ReLU)
    assert same_params(torch_io.encode_half(q, trained), want_client)
    assert not torch.equal(trained[0].weight, client_half[0].weight)   # the given one is kept


def test_a_session_for_another_server_half_is_refused_naming_the_servers():
    _, server_half = halves()
    app = create_app(ceremony=False, server_model=nn.Sequential(nn.Linear(3, 5)))
    with ServerThread(app) as thread:
        client = SplitClient(thread.url, model=halves()[0], server_layers=server_half, batch=2,
                             proof_mode="off")
        with pytest.raises(ServerError, match="this server trains its own half 3->5; the session "
                                            "asks for 3->2"):
            client.create_session()
        assert not app.state.sessions
