"""The server's own half of the model (``create_app(server_model=…)``, ``serve --model``): an
``nn.Sequential`` whose weights are the server's and never leave it. Every session starts from
them; a session asking for another server half is refused, naming the half this server holds."""

from __future__ import annotations

import torch

from splitverify.errors import InputError
from splitverify.model import Params, SplitSpec, torch_io
from splitverify.quant import QuantSpec


class ServerHalf:
    def __init__(self, module: torch.nn.Sequential):
        self.module = module
        self.layers = torch_io.half_layers(module)
        # encoded now, so that weights the fixed point cannot hold stop the server at start
        torch_io.encode_half(QuantSpec(), module)

    def describe(self) -> str:
        return " | ".join(layer.describe() for layer in self.layers)

    def params_for(self, spec: SplitSpec) -> Params:
        """The server's weights for a session of ``spec``, whose server half must be this."""
        if spec.server != self.layers:
            asked = " | ".join(layer.describe() for layer in spec.server)
            raise InputError(f"this server trains its own half {self.describe()}; the session "
                             f"asks for {asked}: give these server layers (train "
                             "--server-layers, SplitClient(server_layers=…))")
        return torch_io.encode_half(spec.quant, self.module)

    def trained(self, params: Params) -> torch.nn.Sequential:
        """The server's half holding a session's (trained) parameters, e.g.
        ``app.state.service.server_half.trained(app.state.sessions[id].party.params)``."""
        return torch_io.decode_half(QuantSpec(), self.module, params)
