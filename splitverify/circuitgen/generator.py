"""Circom source of the three split-learning circuits of a :class:`SplitSpec`.

Each circuit is a main template wiring the per-concern templates of this folder:

* **ClientForward** — data batch → cut-layer activations (the message) and the ReLU masks.
* **ServerStep** — message → logits, MSE loss, back-propagation, SGD update, the activation
  gradient (sent back).
* **ClientBackward** — activation gradient → client back-propagation and SGD update.

Every tensor a circuit takes from outside is range-checked once (a bounded decomposition) and
committed with Poseidon (``Pack`` + ``PoseidonChain``, as :mod:`splitverify.commit`); every
tensor it produces is bounded by the decomposition that computes it. Matrix products are
claimed in the witness and checked with one Freivalds challenge per circuit, derived from a
Poseidon transcript of the session, the step, the commitments and every claimed product.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..commit import tag as commit_tag
from ..model import Dense, SplitSpec

KINDS = ("client_forward", "server_step", "client_backward")
TEMPLATE_NAMES = {"client_forward": "ClientForward", "server_step": "ServerStep",
                  "client_backward": "ClientBackward"}
INCLUDES = ("fixedpoint.circom", "commit.circom", "dense.circom", "loss.circom", "update.circom")
TRANSCRIPT_DOMAIN = {"client_forward": 101, "server_step": 102, "client_backward": 103}


# Constraints of each template after circom's --O2 (linear constraints are substituted away):
# checked against compiled templates by tests/core/circuitgen/test_circuit_costs.py.
POSEIDON_PARTIAL_ROUNDS = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68]
COST_CATEGORIES = ("products", "range_checks", "commitments", "transcript")


def poseidon_cost(arity: int) -> int:
    """3 constraints per S-box (x^5): all t in the 8 full rounds, one per partial round."""
    t = arity + 1
    return 3 * (8 * t + POSEIDON_PARTIAL_ROUNDS[t - 2]) - 3


def chain_cost(n: int) -> int:
    cost, pos = poseidon_cost(min(n, 12)), min(n, 12)
    while pos < n:
        take = min(11, n - pos)
        cost += poseidon_cost(take + 1)
        pos += take
    return cost


def matmul_check_cost(rows: int, inner: int, cols: int) -> int:
    return inner * (cols - 1) + rows * inner + rows * (cols - 1)


def dense_check_cost(batch: int, n_in: int, n_out: int) -> int:
    """MatMulCheck with the bias as an extra row whose multiplier is a constant."""
    return (n_in + 1) * (n_out - 1) + batch * n_in + batch * (n_out - 1)


def dense_naive_cost(batch: int, n_in: int, n_out: int) -> int:
    return batch * n_out * n_in


def dense_optimized_cost(batch: int, n_in: int, n_out: int) -> int:
    """DenseOptimized: the Freivalds check, the Poseidon seed over three commitments and the
    challenge powers (r[1] = seed is free)."""
    return matmul_check_cost(batch, n_in, n_out) + poseidon_cost(3) + max(n_out - 2, 0)


@dataclass(frozen=True)
class Tensor:
    """A circom array (or array expression prefix) and its shape; ``flat`` indexes it by one
    loop variable ``k``."""
    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def flat(self, k: str = "k") -> str:
        if len(self.shape) == 1:
            return f"{self.name}[{k}]"
        rows, cols = self.shape
        return f"{self.name}[{k} \\ {cols}][{k} % {cols}]"


@dataclass(frozen=True)
class Slots:
    """How a tensor enters a commitment: ``value + offset`` in [0, 2^width)."""
    tensor: Tensor
    width: int
    offset: int


@dataclass(frozen=True)
class Packed:
    """A tensor that enters a commitment as field elements already packed (the circuit never
    decodes it): ``size`` slots of ``width`` bits."""
    elements: tuple[str, ...]
    size: int
    width: int


class _Main:
    """Accumulates one main template's declarations and body."""

    def __init__(self, spec: SplitSpec, kind: str):
        self.spec, self.kind, self.q = spec, kind, spec.quant
        self.decl: list[str] = []
        self.body: list[str] = []
        self.outputs: list[str] = []
        self.transcript: list[str] = []     # field-element expressions hashed for the challenge
        # Freivalds checks read the challenge, so they are wired after it (circom computes a
        # component's outputs only once all its inputs are set).
        self.checks: list[str] = []
        self.cost = dict.fromkeys(COST_CATEGORIES, 0)

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

    def forward(self, layers: tuple[Dense, ...], x: Tensor, side: str) -> tuple[list[Tensor], list[Tensor | None]]:
        """Forward pass of a stack; returns each layer's output and ReLU mask (None if no ReLU)."""
        q, batch = self.q, self.spec.batch
        outs, masks = [], []
        a = x
        for i, layer in enumerate(layers):
            w, b = Tensor(f"w{i}", (layer.n_out, layer.n_in)), Tensor(f"b{i}", (layer.n_out,))
            acc = self.input(f"acc{i}", batch, layer.n_out)
            self.claim(self.acc_slots(acc), f"acc{i}")
            d = f"dense{i}"
            self.decl.append(f"component {d} = DenseCheck({batch}, {layer.n_in}, {layer.n_out}, "
                             f"{q.scale});")
            self.cost["products"] += dense_check_cost(batch, layer.n_in, layer.n_out)
            self.cost["range_checks"] += acc.size * (q.value_bits + 1 + q.frac_bits)
            self.cost["products"] += acc.size * 3 if layer.relu else 0   # ReLU + IsZero
            self.loop(batch * layer.n_in, f"{d}.x[k \\ {layer.n_in}][k % {layer.n_in}] <== "
                      f"{a.flat()};", into=self.checks)
            self.loop(w.size, f"{d}.w[k \\ {layer.n_in}][k % {layer.n_in}] <== {w.flat()};",
                      into=self.checks)
            self.loop(layer.n_out, f"{d}.bias[k] <== b{i}[k];", f"{d}.r[k] <== powers.r[k];",
                      into=self.checks)
            self.loop(acc.size, f"{d}.acc[k \\ {layer.n_out}][k % {layer.n_out}] <== "
                      f"{acc.flat()};", into=self.checks)
            out = self.signal(f"{side}Out{i}", batch, layer.n_out)
            rs = f"rescale{i}"
            self.decl.append(f"component {rs}[{acc.size}];")
            lines = [f"{rs}[k] = Rescale({q.value_bits}, {q.frac_bits});",
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

    def backward(self, layers: tuple[Dense, ...], inputs: list[Tensor],
                 masks: list[Tensor | None], grad_top: Tensor, *, input_grad: bool) -> Tensor | None:
        """Back-propagation and SGD update of a stack; returns the rescaled gradient of the
        stack's input when ``input_grad``."""
        q, batch = self.q, self.spec.batch
        g = grad_top
        new_w, new_b = [], []
        for i in reversed(range(len(layers))):
            layer = layers[i]
            n_in, n_out = layer.n_in, layer.n_out
            dy = self.signal(f"dy{i}", batch, n_out)
            self.cost["products"] += matmul_check_cost(n_out, batch, n_in)
            if masks[i] is not None:
                self.cost["products"] += dy.size
                self.loop(dy.size, f"{dy.flat()} <== {g.flat()} * {masks[i].flat()};")
            else:
                self.loop(dy.size, f"{dy.flat()} <== {g.flat()};")
            # dW accumulator (claimed, checked) and the update it drives
            gw = self.input(f"gw{i}", n_out, n_in)
            c = f"wgrad{i}"
            self.decl.append(f"component {c} = MatMulCheck({n_out}, {batch}, {n_in});")
            self.loop(dy.size, f"{c}.a[k % {n_out}][k \\ {n_out}] <== {dy.flat()};",
                      into=self.checks)
            self.loop(batch * n_in, f"{c}.b[k \\ {n_in}][k % {n_in}] <== {inputs[i].flat()};",
                      into=self.checks)
            self.loop(gw.size, f"{c}.c[k \\ {n_in}][k % {n_in}] <== {gw.flat()};",
                      into=self.checks)
            self.loop(n_in, f"{c}.r[k] <== powers.r[k];", into=self.checks)
            decoded = i in self.decoded
            w_new = self.sgd_steps(f"W{i}", gw.size, q.weight_update_shift, gw.flat,
                                   f"w{i}", (n_out, n_in), decoded, claim=True)
            b_new = self.sgd_steps(f"B{i}", n_out, q.lr_shift,
                                   lambda k: " + ".join(f"{dy.name}[{r}][{k}]" for r in range(batch)),
                                   f"b{i}", (n_out,), decoded, claim=False)
            new_w.insert(0, w_new)
            new_b.insert(0, b_new)
            if i == 0 and not input_grad:
                g = None
                break
            # input gradient: dX accumulator (claimed, checked), then rescaled
            gx = self.input(f"gx{i}", batch, n_in)
            self.claim(self.acc_slots(gx), f"gx{i}")
            self.cost["products"] += matmul_check_cost(batch, n_out, n_in)
            self.cost["range_checks"] += gx.size * (q.value_bits + 1 + q.frac_bits)
            c = f"xgrad{i}"
            self.decl.append(f"component {c} = MatMulCheck({batch}, {n_out}, {n_in});")
            self.loop(dy.size, f"{c}.a[k \\ {n_out}][k % {n_out}] <== {dy.flat()};",
                      into=self.checks)
            self.loop(n_out * n_in, f"{c}.b[k \\ {n_in}][k % {n_in}] <== "
                      f"w{i}[k \\ {n_in}][k % {n_in}];", into=self.checks)
            self.loop(gx.size, f"{c}.c[k \\ {n_in}][k % {n_in}] <== {gx.flat()};",
                      into=self.checks)
            self.loop(n_in, f"{c}.r[k] <== powers.r[k];", into=self.checks)
            g = self.signal(f"dx{i}", batch, n_in)
            rs = f"gxRescale{i}"
            self.decl.append(f"component {rs}[{gx.size}];")
            self.loop(gx.size, f"{rs}[k] = Rescale({q.value_bits}, {q.frac_bits});",
                      f"{rs}[k].in <== {gx.flat()};", f"{g.flat()} <== {rs}[k].out;")
        self.new_params = [seg for pair in zip(new_w, new_b) for seg in pair]
        return g

    def sgd_steps(self, label: str, n: int, shift: int, grad, param: str,
                  shape: tuple[int, ...], decoded: bool, *, claim: bool) -> Slots | Packed:
        """SgdStep for every entry of parameter ``param``; returns the new parameter's
        commitment segment: decoded − step, or the packed old value minus the packed steps."""
        q = self.q
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

    def weights(self, layers: tuple[Dense, ...], packed: frozenset[int] = frozenset()
                ) -> list[Slots | Packed]:
        """The parameters' commitment segments. Layers in ``packed`` are taken as committed
        (packed elements, not decoded: they are only updated); the others are decoded and
        range-checked. Slots have one bit of slack (see Segment.signed)."""
        v = self.q.value_bits
        self.decoded = set(range(len(layers))) - set(packed)
        segments: list[Slots | Packed] = []
        for i, layer in enumerate(layers):
            for name, shape in ((f"w{i}", (layer.n_out, layer.n_in)), (f"b{i}", (layer.n_out,))):
                size = shape[0] * (shape[1] if len(shape) > 1 else 1)
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

    def data_commitment(self) -> tuple[Tensor, Tensor]:
        """The client's data batch and one-hot labels, range-checked and committed: the same
        commitment in ClientForward and ClientBackward (the verifier checks they are equal)."""
        spec = self.spec
        x = self.input("x", spec.batch, spec.features)
        labels = self.input("labels", spec.batch, spec.classes)
        self.commitment("dataCommitment", "data", self.input("dataSalt").name,
                        [self.signed_range(x, self.q.input_bits), self.one_hot_rows(labels)])
        return x, labels

    def challenge(self, layers: tuple[Dense, ...]) -> None:
        widest = max(max(layer.n_in, layer.n_out) for layer in layers)
        elements = [str(TRANSCRIPT_DOMAIN[self.kind]), "session", "step", *self.transcript]
        self.decl.append(f"component powers = ChallengePowers({widest});")
        self.body.append(f"powers.seed <== {self.chain('transcript', elements, 'transcript')};")
        self.cost["transcript"] += max(widest - 2, 0)   # r[1] = seed is free

    def source(self) -> str:
        name = TEMPLATE_NAMES[self.kind]
        includes = "".join(f'include "{f}";\n' for f in INCLUDES)
        lines = [*self.decl, *self.outputs, "", *self.body, "", *self.checks]
        body = "\n".join(f"    {line}" if line else "" for line in lines)
        return (f"pragma circom 2.1.0;\n// Generated by splitverify.circuitgen.generator for "
                f"{describe(self.spec)}.\n{includes}\ntemplate {name}() {{\n{body}\n}}\n\n"
                f"component main {{public [session, step]}} = {name}();\n")


def describe(spec: SplitSpec) -> str:
    def half(layers):
        return " ".join(f"{d.n_in}->{d.n_out}{'+relu' if d.relu else ''}" for d in layers)
    q = spec.quant
    return (f"client [{half(spec.client)}] | server [{half(spec.server)}], batch {spec.batch}, "
            f"frac {q.frac_bits}, value {q.value_bits}, input {q.input_bits}, "
            f"step {q.step_bits}, "
            f"lr {q.lr_num}/2^{q.lr_shift}")


def _client_forward(spec: SplitSpec) -> _Main:
    m = _Main(spec, "client_forward")
    q = spec.quant
    m.input("session")
    m.input("step")
    x, labels = m.data_commitment()
    m.commitment("weightsCommitment", "weights", m.input("weightsSalt").name,
                 m.weights(spec.client))
    outs, masks = m.forward(spec.client, x, "a")
    v = q.value_bits
    m.commitment("messageCommitment", "message", m.input("messageSalt").name,
                 [Slots(outs[-1], v + 1, 1 << v), Slots(labels, 1, 0)])
    state = [Slots(mask, 1, 0) for mask in masks if mask]
    state += [Slots(t, v + 1, 1 << v) for t in outs[:-1]]
    m.commitment("stateCommitment", "state", m.input("stateSalt").name, state)
    m.challenge(spec.client)
    return m


def _server_step(spec: SplitSpec) -> _Main:
    m = _Main(spec, "server_step")
    q, batch, v = spec.quant, spec.batch, spec.quant.value_bits
    m.input("session")
    m.input("step")
    h = m.input("activations", batch, spec.cut_width)
    labels = m.input("labels", batch, spec.classes)
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


def _client_backward(spec: SplitSpec) -> _Main:
    m = _Main(spec, "client_backward")
    q, batch, v = spec.quant, spec.batch, spec.quant.value_bits
    m.input("session")
    m.input("step")
    grad = m.input("gradient", batch, spec.cut_width)
    m.commitment("gradientCommitment", "gradient", m.input("gradientSalt").name,
                 [m.signed_range(grad, v)])
    x, labels = m.data_commitment()
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


_BUILDERS = {"client_forward": _client_forward, "server_step": _server_step,
             "client_backward": _client_backward}


def _build(spec: SplitSpec, kind: str) -> _Main:
    if kind not in _BUILDERS:
        raise ValueError(f"unknown circuit {kind!r}; one of {KINDS}")
    return _BUILDERS[kind](spec)


def generate(spec: SplitSpec, kind: str) -> str:
    """Circom source (with ``component main``) of circuit ``kind`` for ``spec``."""
    return _build(spec, kind).source()


def cost_breakdown(spec: SplitSpec, kind: str) -> dict[str, int]:
    """Constraints of circuit ``kind`` by what they do (after --O2), from the templates it
    instantiates: products (Freivalds checks, ReLU, masks, loss squares), range checks (every
    bounded decomposition: inputs, rescales, updates), commitments (Poseidon over the packed
    tensors) and the Fiat–Shamir transcript (Poseidon over the claims, challenge powers)."""
    return dict(_build(spec, kind).cost)
