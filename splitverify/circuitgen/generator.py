"""Circom source of the three split-learning circuits of a :class:`SplitSpec`.

Each circuit is a main template wiring the per-concern templates of this folder:

* **ClientForward** — data batch → cut-layer activations (the message) and the ReLU masks.
* **ServerStep** — message → logits, MSE loss, back-propagation, SGD update, the activation
  gradient (sent back).
* **ClientBackward** — activation gradient → client back-propagation and SGD update.
* **Aggregate** (SplitFed-V1, for K clients) — the K clients' committed halves → their average
  floor(Σ / K), committed under each client's weights salt (:func:`generate_aggregate`).

Every tensor a circuit takes from outside is range-checked once (a bounded decomposition) and
committed with Poseidon (``Pack`` + ``PoseidonChain``, as :mod:`splitverify.commit`); every
tensor it produces is bounded by the decomposition that computes it. Matrix products are
claimed in the witness and checked with one Freivalds challenge per circuit, derived from a
Poseidon transcript of the session, the step, the commitments and every claimed product.
"""

from __future__ import annotations

from ..commit import tag as commit_tag
from ..label_table import table_tag
from ..errors import InputError
from ..model import Layer, SplitSpec
from .emit import emitter_of
from .emit.base import Packed, ParameterUpdate, Slots, Tensor, chain_cost
from .emit.base import poseidon_cost
from .emit.dense import (dense_check_cost, dense_naive_cost, dense_optimized_cost,
                         matmul_check_cost)

# the cost model's entry points are re-exported: tests, the benchmark and `splitverify circuits`
# read them here
__all__ = ["AGGREGATE", "COST_CATEGORIES", "INCLUDES", "KINDS", "TEMPLATE_NAMES",
           "TRANSCRIPT_DOMAIN", "aggregate_cost",
           "chain_cost", "cost_breakdown", "dense_check_cost", "dense_naive_cost",
           "dense_optimized_cost", "describe", "generate", "generate_aggregate",
           "matmul_check_cost", "poseidon_cost"]

KINDS = ("client_forward", "server_step", "client_backward")
# SplitFed-V1's averaging proof: not one of a step's three circuits (KINDS), built per K clients
AGGREGATE = "aggregate"
TEMPLATE_NAMES = {"client_forward": "ClientForward", "server_step": "ServerStep",
                  "client_backward": "ClientBackward", AGGREGATE: "Aggregate"}
# dense.circom holds the Freivalds machinery every circuit uses (ChallengePowers, MatMulCheck)
INCLUDES = ("fixedpoint.circom", "commit.circom", "dense.circom", "loss.circom", "update.circom")
LABEL_TABLE_INCLUDE = "labels.circom"   # only with --labels server
TRANSCRIPT_DOMAIN = {"client_forward": 101, "server_step": 102, "client_backward": 103}
COST_CATEGORIES = ("products", "range_checks", "commitments", "transcript")


class _Main:
    """Accumulates one main template's declarations and body."""

    def __init__(self, spec: SplitSpec, kind: str, label_table_depth: int = 0):
        self.spec, self.kind, self.q = spec, kind, spec.quant
        self.label_table_depth = label_table_depth
        self.decl: list[str] = []
        self.body: list[str] = []
        self.outputs: list[str] = []
        self.transcript: list[str] = []     # field-element expressions hashed for the challenge
        # Freivalds checks read the challenge, so they are wired after it (circom computes a
        # component's outputs only once all its inputs are set).
        self.checks: list[str] = []
        self.cost = dict.fromkeys(COST_CATEGORIES, 0)
        self.public = ["session", "step"]    # main's public inputs
        self.note = ""                       # what the header comment adds to the spec

    # -- declarations ---------------------------------------------------------------------
    def input(self, name: str, *shape: int) -> Tensor:
        self.decl.append(f"signal input {name}{''.join(f'[{d}]' for d in shape)};")
        return Tensor(name, shape)

    def signal(self, name: str, *shape: int) -> Tensor:
        self.decl.append(f"signal {name}{''.join(f'[{d}]' for d in shape)};")
        return Tensor(name, shape)

    def output(self, name: str, expr: str) -> str:
        self.outputs.append(f"signal output {name};")
        self.body.append(f"{name} <== {expr};")
        return name

    def loop(self, n: int, *lines: str, into: list[str] | None = None) -> None:
        target = self.body if into is None else into
        target.append(f"for (var k = 0; k < {n}; k++) {{")
        target += [f"    {line}" for line in lines]
        target.append("}")

    # -- range checks -----------------------------------------------------------------------
    def signed_range(self, t: Tensor, bits: int) -> Slots:
        """|t| < 2^bits for every entry; returns its commitment slots."""
        c = f"{t.name}Range"
        self.decl.append(f"component {c}[{t.size}];")
        self.loop(t.size, f"{c}[k] = SignedRange({bits});", f"{c}[k].in <== {t.flat()};")
        self.cost["range_checks"] += t.size * (bits + 1)
        return Slots(t, bits + 1, 1 << bits)

    def one_hot_rows(self, t: Tensor) -> Slots:
        rows, cols = t.shape
        c = f"{t.name}OneHot"
        self.decl.append(f"component {c}[{rows}];")
        self.loop(rows, f"{c}[k] = OneHot({cols});",
                  f"for (var j = 0; j < {cols}; j++) {{ {c}[k].in[j] <== {t.name}[k][j]; }}")
        self.cost["range_checks"] += t.size
        return Slots(t, 1, 0)

    def bits(self, t: Tensor) -> Slots:
        self.loop(t.size, f"{t.flat()} * ({t.flat()} - 1) === 0;")
        self.cost["range_checks"] += t.size
        return Slots(t, 1, 0)

    # -- commitments and transcript ---------------------------------------------------------
    def pack(self, s: Slots, label: str) -> list[str]:
        per = 253 // s.width
        n_out = -(-s.tensor.size // per)
        c = f"{label}Pack"
        self.decl.append(f"component {c} = Pack({s.tensor.size}, {s.width}, {s.offset});")
        self.loop(s.tensor.size, f"{c}.in[k] <== {s.tensor.flat()};")
        return [f"{c}.out[{e}]" for e in range(n_out)]

    def chain(self, label: str, elements: list[str], category: str = "commitments") -> str:
        # every chain starts with one constant (a layout tag or the transcript's domain), whose
        # first S-box circom evaluates at compile time
        self.cost[category] += chain_cost(len(elements)) - 3
        c = f"{label}Chain"
        self.decl.append(f"component {c} = PoseidonChain({len(elements)});")
        self.body += [f"{c}.in[{i}] <== {e};" for i, e in enumerate(elements)]
        return f"{c}.out"

    def commitment(self, name: str, kind: str, salt: str, segments: list[Slots | Packed]) -> str:
        """Output ``name`` = the commitment of ``segments`` (splitverify.commit.commit)."""
        layout = [(s.size, s.width) if isinstance(s, Packed) else (s.tensor.size, s.width)
                  for s in segments]
        elements = [salt, str(commit_tag(kind, layout))]
        for i, s in enumerate(segments):
            elements += list(s.elements) if isinstance(s, Packed) else self.pack(s, f"{name}{i}")
        out = self.output(name, self.chain(name, elements))
        self.transcript.append(out)
        return out

    def claim(self, s: Slots, label: str) -> None:
        """A claimed product (or what pins it) goes into the Fiat–Shamir transcript."""
        self.transcript += self.pack(s, label)

    # -- layers -----------------------------------------------------------------------------
    def acc_slots(self, t: Tensor) -> Slots:
        """A rescale input: bounded by the Rescale decomposition (value + shift + 1 bits)."""
        bits = self.q.value_bits + self.q.frac_bits
        return Slots(t, bits + 1, 1 << bits)

    def forward(self, layers: tuple[Layer, ...], x: Tensor, side: str) -> tuple[list[Tensor], list[Tensor | None]]:
        """Forward pass of a stack; returns each layer's output and ReLU mask (None if no ReLU)."""
        q, batch = self.q, self.spec.batch
        outs, masks = [], []
        a = x
        for i, layer in enumerate(layers):
            emitter = emitter_of(layer)
            if layer.claims_accumulators:
                acc = self.input(f"acc{i}", batch, layer.n_out)
                self.claim(self.acc_slots(acc), f"acc{i}")
                emitter.forward_check(self, i, layer, a, acc)
            else:
                acc = emitter.forward_sum(self, i, layer, a)
            shift = layer.rescale_shift(q)
            self.cost["range_checks"] += acc.size * (q.value_bits + 1 + shift)
            self.cost["products"] += acc.size * 3 if layer.relu else 0   # ReLU + IsZero
            out = self.signal(f"{side}Out{i}", batch, layer.n_out)
            rs = f"rescale{i}"
            self.decl.append(f"component {rs}[{acc.size}];")
            lines = [f"{rs}[k] = Rescale({q.value_bits}, {shift});",
                     f"{rs}[k].in <== {acc.flat()};"]
            if layer.relu:
                self.decl.append(f"component relu{i}[{acc.size}];")
                self.decl.append(f"component mask{i}[{acc.size}];")
                bits = self.signal(f"maskBit{i}", acc.size)
                lines += [f"relu{i}[k] = ReLU();", f"relu{i}[k].in <== {rs}[k].out;",
                          f"relu{i}[k].isNonNeg <== {rs}[k].isNonNeg;",
                          f"{out.flat()} <== relu{i}[k].out;",
                          f"mask{i}[k] = ReluMask();", f"mask{i}[k].reluOut <== relu{i}[k].out;",
                          f"{bits.name}[k] <== mask{i}[k].mask;"]
                masks.append(bits)
            else:
                lines.append(f"{out.flat()} <== {rs}[k].out;")
                masks.append(None)
            self.loop(acc.size, *lines)
            outs.append(out)
            a = out
        return outs, masks

    def backward(self, layers: tuple[Layer, ...], inputs: list[Tensor],
                 masks: list[Tensor | None], grad_top: Tensor, *, input_grad: bool) -> Tensor | None:
        """Back-propagation and SGD update of a stack; returns the rescaled gradient of the
        stack's input when ``input_grad``."""
        q, batch = self.q, self.spec.batch
        g = grad_top
        new_params: list[list[Slots | Packed]] = []
        for i in reversed(range(len(layers))):
            layer = layers[i]
            emitter = emitter_of(layer)
            dy = self.signal(f"dy{i}", batch, layer.n_out)
            if masks[i] is not None:
                self.cost["products"] += dy.size
                self.loop(dy.size, f"{dy.flat()} <== {g.flat()} * {masks[i].flat()};")
            else:
                self.loop(dy.size, f"{dy.flat()} <== {g.flat()};")
            # the parameter gradients (claimed, checked) and the updates they drive
            updates = emitter.weight_gradient(self, i, layer, dy, inputs[i])
            shapes = dict(layer.parameter_shapes())
            new_params.insert(0, [self.sgd_steps(i, update, shapes[update.name])
                                  for update in updates])
            if i == 0 and not input_grad:
                g = None
                break
            # input gradient: dX accumulator (claimed and checked, or computed), then rescaled
            if layer.claims_accumulators:
                gx = self.input(f"gx{i}", batch, layer.n_in)
                self.claim(self.acc_slots(gx), f"gx{i}")
                emitter.input_gradient_check(self, i, layer, dy, gx)
            else:
                gx = emitter.input_gradient_sum(self, i, layer, dy)
            shift = layer.rescale_shift(q)
            self.cost["range_checks"] += gx.size * (q.value_bits + 1 + shift)
            g = self.signal(f"dx{i}", batch, layer.n_in)
            rs = f"gxRescale{i}"
            self.decl.append(f"component {rs}[{gx.size}];")
            self.loop(gx.size, f"{rs}[k] = Rescale({q.value_bits}, {shift});",
                      f"{rs}[k].in <== {gx.flat()};", f"{g.flat()} <== {rs}[k].out;")
        self.new_params = [segment for layer_params in new_params for segment in layer_params]
        return g

    def sgd_steps(self, i: int, update: ParameterUpdate, shape: tuple[int, ...]) -> Slots | Packed:
        """SgdStep for every entry of layer ``i``'s parameter ``update.name``; returns the new
        parameter's commitment segment: decoded − step, or the packed old value minus the
        packed steps."""
        q = self.q
        label, n, shift, grad = f"{update.name.upper()}{i}", update.size, update.shift, update.grad
        param, decoded, claim = f"{update.name}{i}", i in self.decoded, update.claim
        c = f"step{label}"
        self.decl.append(f"component {c}[{n}];")
        self.body.append(f"for (var k = 0; k < {n}; k++) {{ {c}[k] = SgdStep({q.step_bits}, "
                         f"{shift}, {q.lr_num}); }}")
        self.loop(n, f"{c}[k].grad <== {grad('k')};")
        self.cost["range_checks"] += n * (q.step_bits + 1 + shift)
        if claim:
            rem = self.signal(f"rem{label}", n)
            self.loop(n, f"{rem.name}[k] <== {c}[k].rem;")
            self.claim(Slots(rem, shift, 0), rem.name)
        width, offset = q.value_bits + 2, 1 << (q.value_bits + 1)
        if decoded:
            new = Tensor(f"{param}New", shape)
            self.decl.append(f"signal {new.name}{''.join(f'[{d}]' for d in shape)};")
            self.loop(n, f"{new.flat()} <== {Tensor(param, shape).flat()} - {c}[k].step;")
            return Slots(new, width, offset)
        per = 253 // width
        elements = tuple(
            f"{param}Packed[{e}] - (" + " + ".join(
                f"{c}[{e * per + k}].step * {1 << (width * k)}"
                for k in range(min(per, n - e * per))) + ")"
            for e in range(-(-n // per)))
        return Packed(elements, n, width)

    def weights(self, layers: tuple[Layer, ...], packed: frozenset[int] = frozenset(),
                prefix: str = "") -> list[Slots | Packed]:
        """The parameters' commitment segments. Layers in ``packed`` are taken as committed
        (packed elements, not decoded: they are only updated); the others are decoded and
        range-checked. Slots have one bit of slack (see Segment.signed). ``prefix`` starts
        the inputs' names (several halves in one circuit: Aggregate)."""
        v = self.q.value_bits
        self.decoded = set(range(len(layers))) - set(packed)
        segments: list[Slots | Packed] = []
        for i, layer in enumerate(layers):
            for param, shape in layer.parameter_shapes():
                name = f"{prefix}{param}{i}"
                size = Tensor(name, shape).size
                if i in packed:
                    n_el = -(-size // (253 // (v + 2)))
                    t = self.input(f"{name}Packed", n_el)
                    segments.append(Packed(tuple(f"{t.name}[{e}]" for e in range(n_el)), size,
                                           v + 2))
                else:
                    t = self.input(name, *shape)
                    self.signed_range(t, v)
                    segments.append(Slots(t, v + 2, 1 << (v + 1)))
        return segments

    def data_commitment(self) -> tuple[Tensor, Slots]:
        """The client's data batch and what names its rows, range-checked and committed: the
        same commitment in ClientForward and ClientBackward (the verifier checks they are
        equal). The rows are one-hot labels, or under --labels server the sample ids (each
        bounded to the table's depth in bits by Num2Bits)."""
        spec, depth = self.spec, self.label_table_depth
        x = self.input("x", spec.batch, spec.features)
        # declared in this order (rows, salt, then the range checks): the default circuits'
        # source stays byte for byte what it was, so their keys and caches stay valid
        rows = self.input("ids", spec.batch) if depth else \
            self.input("labels", spec.batch, spec.classes)
        salt = self.input("dataSalt").name
        segments = [self.signed_range(x, self.q.input_bits),
                    self.id_bits(rows, depth) if depth else self.one_hot_rows(rows)]
        self.commitment("dataCommitment", "data", salt, segments)
        return x, segments[1]

    def id_bits(self, ids: Tensor, depth: int) -> Slots:
        """Sample ids bounded to ``depth`` bits (Num2Bits: each bit a bit, their sum the id)."""
        self.decl.append(f"component {ids.name}Bits[{ids.size}];")
        self.loop(ids.size, f"{ids.name}Bits[k] = Num2Bits({depth});",
                  f"{ids.name}Bits[k].in <== {ids.flat()};")
        self.cost["range_checks"] += ids.size * depth
        return Slots(ids, depth, 0)

    def table_labels(self, h: Tensor, labels: Tensor, depth: int) -> None:
        """``--labels server``: the message commits the activations and the rows' sample ids;
        each row's one-hot label is the leaf at its id of the Merkle tree whose root the public
        ``labelTable`` commits (MerkleRoot's Num2Bits bounds the id to ``depth`` bits)."""
        spec, v = self.spec, self.q.value_bits
        ids = self.input("ids", spec.batch)
        self.commitment("messageCommitment", "message", self.input("messageSalt").name,
                        [self.signed_range(h, v), Slots(ids, depth, 0)])
        self.one_hot_rows(labels)
        root, siblings = self.input("labelRoot"), self.input("labelSiblings", spec.batch, depth)
        table = self.output("labelTable", self.chain(
            "labelTable", [self.input("labelSalt").name, str(table_tag(depth)), root.name]))
        self.transcript.append(table)
        path = "labelPath"
        self.decl.append(f"component {path}[{spec.batch}];")
        leaf = " + ".join(f"{c} * {labels.name}[k][{c}]" for c in range(1, spec.classes))
        self.loop(spec.batch, f"{path}[k] = MerkleRoot({depth});",
                  f"{path}[k].leaf <== {leaf};", f"{path}[k].index <== {ids.name}[k];",
                  f"for (var i = 0; i < {depth}; i++) {{ "
                  f"{path}[k].siblings[i] <== {siblings.name}[k][i]; }}",
                  f"{path}[k].root === {root.name};")
        self.cost["range_checks"] += spec.batch * depth
        self.cost["products"] += spec.batch * depth          # the side each path bit picks
        self.cost["commitments"] += spec.batch * depth * poseidon_cost(2)

    def challenge(self, layers: tuple[Layer, ...]) -> None:
        widest = max(emitter_of(layer).challenge_powers(layer) for layer in layers)
        elements = [str(TRANSCRIPT_DOMAIN[self.kind]), "session", "step", *self.transcript]
        self.decl.append(f"component powers = ChallengePowers({widest});")
        self.body.append(f"powers.seed <== {self.chain('transcript', elements, 'transcript')};")
        self.cost["transcript"] += max(widest - 2, 0)   # r[1] = seed is free

    def source(self) -> str:
        name = TEMPLATE_NAMES[self.kind]
        layer_includes = [f for layer in self.spec.client + self.spec.server
                          for f in emitter_of(layer).INCLUDES]
        table_includes = [LABEL_TABLE_INCLUDE] if self.label_table_depth else []
        includes = "".join(f'include "{f}";\n'
                           for f in dict.fromkeys([*INCLUDES, *layer_includes, *table_includes]))
        labels_note = (f", labels from a server table of depth {self.label_table_depth}"
                       if self.label_table_depth else "") + self.note
        lines = [*self.decl, *self.outputs, "", *self.body, "", *self.checks]
        body = "\n".join(f"    {line}" if line else "" for line in lines)
        return (f"pragma circom 2.1.0;\n// Generated by splitverify.circuitgen.generator for "
                f"{describe(self.spec)}{labels_note}.\n{includes}\n"
                f"template {name}() {{\n{body}\n}}\n\n"
                f"component main {{public [{', '.join(self.public)}]}} = {name}();\n")


def describe(spec: SplitSpec) -> str:
    def half(layers):
        return " ".join(layer.describe() for layer in layers)
    q = spec.quant
    return (f"client [{half(spec.client)}] | server [{half(spec.server)}], batch {spec.batch}, "
            f"frac {q.frac_bits}, value {q.value_bits}, input {q.input_bits}, "
            f"step {q.step_bits}, "
            f"lr {q.lr_num}/2^{q.lr_shift}")


def _client_forward(spec: SplitSpec, label_table_depth: int = 0) -> _Main:
    m = _Main(spec, "client_forward", label_table_depth)
    q = spec.quant
    m.input("session")
    m.input("step")
    x, rows = m.data_commitment()
    m.commitment("weightsCommitment", "weights", m.input("weightsSalt").name,
                 m.weights(spec.client))
    outs, masks = m.forward(spec.client, x, "a")
    v = q.value_bits
    m.commitment("messageCommitment", "message", m.input("messageSalt").name,
                 [Slots(outs[-1], v + 1, 1 << v), rows])
    state = [Slots(mask, 1, 0) for mask in masks if mask]
    state += [Slots(t, v + 1, 1 << v) for t in outs[:-1]]
    m.commitment("stateCommitment", "state", m.input("stateSalt").name, state)
    m.challenge(spec.client)
    return m


def _server_step(spec: SplitSpec, label_table_depth: int = 0) -> _Main:
    """``label_table_depth`` > 0: labels from the server's committed table (``--labels server``)
    at the sample ids the message names, instead of labels in the message."""
    m = _Main(spec, "server_step", label_table_depth)
    q, batch, v = spec.quant, spec.batch, spec.quant.value_bits
    m.input("session")
    m.input("step")
    h = m.input("activations", batch, spec.cut_width)
    labels = m.input("labels", batch, spec.classes)
    if label_table_depth:
        m.table_labels(h, labels, label_table_depth)
    else:
        m.commitment("messageCommitment", "message", m.input("messageSalt").name,
                     [m.signed_range(h, v), m.one_hot_rows(labels)])
    weight_slots = m.weights(spec.server)
    m.commitment("weightsBefore", "weights", m.input("weightsSalt").name, weight_slots)
    outs, masks = m.forward(spec.server, h, "z")
    m.decl.append(f"component mse = MseOneHot({batch}, {spec.classes}, {v}, {q.frac_bits});")
    m.cost["products"] += batch * spec.classes
    m.cost["range_checks"] += 2 * (v + 1) + (batch * spec.classes - 1).bit_length()
    m.loop(batch * spec.classes,
           f"mse.logits[k \\ {spec.classes}][k % {spec.classes}] <== {outs[-1].flat()};",
           f"mse.onehot[k \\ {spec.classes}][k % {spec.classes}] <== {labels.flat()};")
    m.output("loss", "mse.loss")
    grad = m.backward(spec.server, [h, *outs[:-1]], masks, Tensor("mse.grad", (batch, spec.classes)),
                      input_grad=True)
    m.commitment("weightsAfter", "weights", "weightsSalt", m.new_params)
    m.commitment("gradientCommitment", "gradient", m.input("gradientSalt").name,
                 [Slots(grad, v + 1, 1 << v)])
    m.challenge(spec.server)
    return m


def _client_backward(spec: SplitSpec, label_table_depth: int = 0) -> _Main:
    m = _Main(spec, "client_backward", label_table_depth)
    q, batch, v = spec.quant, spec.batch, spec.quant.value_bits
    m.input("session")
    m.input("step")
    grad = m.input("gradient", batch, spec.cut_width)
    m.commitment("gradientCommitment", "gradient", m.input("gradientSalt").name,
                 [m.signed_range(grad, v)])
    x, _rows = m.data_commitment()
    masks: list[Tensor | None] = []
    state = []
    for i, layer in enumerate(spec.client):
        if layer.relu:
            mask = m.input(f"maskIn{i}", batch * layer.n_out)
            state.append(m.bits(mask))
            masks.append(mask)
        else:
            masks.append(None)
    acts = [m.input(f"act{i}", batch, layer.n_in) for i, layer in enumerate(spec.client) if i > 0]
    state += [m.signed_range(t, v) for t in acts]
    m.commitment("stateCommitment", "state", m.input("stateSalt").name, state)
    # the first layer's parameters are only updated (no dX for the data): taken packed
    m.commitment("weightsBefore", "weights", m.input("weightsSalt").name,
                 m.weights(spec.client, packed=frozenset({0})))
    m.backward(spec.client, [x, *acts], masks, grad, input_grad=False)
    m.commitment("weightsAfter", "weights", "weightsSalt", m.new_params)
    m.challenge(spec.client)
    return m


def _aggregate(spec: SplitSpec, clients: int) -> _Main:
    """SplitFed-V1's averaging of the client halves of ``clients`` sessions. Private: each
    client's parameters (range-checked, as every committed tensor) and weights salt, and the
    average; public: each client's weights commitment (its last proven weightsAfter), the
    average's commitment under each client's salt (that client's next weightsBefore), the
    clients' session ids and the round. Per entry, avg = floor(Σ / K): the remainder
    Σ − K·avg is a bounded decomposition in [0, K) (rem and K − 1 − rem both in
    bit_length(K − 1) bits), and |avg| < 2^value_bits, so avg is the unique integer, and one
    that fits the weights' commitment slots."""
    if clients < 2:
        raise InputError(f"an average needs at least 2 clients, not {clients}")
    m = _Main(spec, AGGREGATE)
    m.public = [*(f"session{j}" for j in range(clients)), "round"]
    m.note = f", the average of {clients} clients' halves"
    # circom puts a public input into a constraint only where one reads it; nothing here does
    # (no Fiat–Shamir transcript hashes them, as in the step circuits), so each is squared into
    # a signal of its own: the R1CS itself, not only the setup's rows, then binds the ids
    m.decl.append(f"signal idSquares[{len(m.public)}];")
    for i, name in enumerate(m.public):
        m.input(name)
        m.body.append(f"idSquares[{i}] <== {name} * {name};")
    m.cost["transcript"] += len(m.public)
    v, rem_bits = spec.quant.value_bits, (clients - 1).bit_length()
    salts = [m.input(f"weightsSalt{j}").name for j in range(clients)]
    for j, salt in enumerate(salts):
        m.commitment(f"clientWeights{j}", "weights", salt, m.weights(spec.client, prefix=f"c{j}_"))
    average: list[Slots | Packed] = []
    for i, layer in enumerate(spec.client):
        for param, shape in layer.parameter_shapes():
            avg = m.input(f"avg_{param}{i}", *shape)
            m.signed_range(avg, v)
            total = " + ".join(Tensor(f"c{j}_{param}{i}", shape).flat() for j in range(clients))
            rem = f"({total} - {clients} * {avg.flat()})"
            c = f"{avg.name}Rem"
            m.decl.append(f"component {c}[{avg.size}];")
            m.decl.append(f"component {c}Top[{avg.size}];")
            m.loop(avg.size, f"{c}[k] = Num2Bits({rem_bits});", f"{c}[k].in <== {rem};",
                   f"{c}Top[k] = Num2Bits({rem_bits});",
                   f"{c}Top[k].in <== {clients - 1} - {rem};")
            m.cost["range_checks"] += avg.size * 2 * rem_bits
            average.append(Slots(avg, v + 2, 1 << (v + 1)))
    for j, salt in enumerate(salts):
        m.commitment(f"averageWeights{j}", "weights", salt, average)
    return m


def generate_aggregate(spec: SplitSpec, clients: int) -> str:
    """Circom source of the Aggregate circuit of ``spec``'s client half for ``clients``."""
    return _aggregate(spec, clients).source()


def aggregate_cost(spec: SplitSpec, clients: int) -> dict[str, int]:
    """The Aggregate circuit's constraints by category (as :func:`cost_breakdown`)."""
    return dict(_aggregate(spec, clients).cost)


_BUILDERS = {"client_forward": _client_forward, "server_step": _server_step,
             "client_backward": _client_backward}


def _build(spec: SplitSpec, kind: str, label_table_depth: int = 0) -> _Main:
    if kind not in _BUILDERS:
        raise ValueError(f"unknown circuit {kind!r}; one of {KINDS}")
    if label_table_depth < 0:
        raise InputError(f"a label table's depth must be ≥ 1 (0: labels from the client), not "
                         f"{label_table_depth}")
    return _BUILDERS[kind](spec, label_table_depth)


def generate(spec: SplitSpec, kind: str, label_table_depth: int = 0) -> str:
    """Circom source (with ``component main``) of circuit ``kind`` for ``spec``;
    ``label_table_depth`` > 0: ServerStep takes its labels from the server's committed table."""
    return _build(spec, kind, label_table_depth).source()


def cost_breakdown(spec: SplitSpec, kind: str, label_table_depth: int = 0) -> dict[str, int]:
    """Constraints of circuit ``kind`` by what they do (after --O2), from the templates it
    instantiates: products (Freivalds checks, ReLU, masks, loss squares), range checks (every
    bounded decomposition: inputs, rescales, updates), commitments (Poseidon over the packed
    tensors) and the Fiat–Shamir transcript (Poseidon over the claims, challenge powers)."""
    return dict(_build(spec, kind, label_table_depth).cost)
