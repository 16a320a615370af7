"""hear-eval-kit's prediction MLP, for many probes at once and one at a time.

Architecture (``FullyConnectedPrediction`` of hear-eval-kit): ``hidden_layers`` times
``Linear(d, hidden_dim) → BatchNorm1d → Dropout(p) → ReLU``, then ``Linear(·, n_labels)``.
Weights use xavier uniform or normal init with gain 1 for the first layer and the ReLU gain
``√2`` after a ReLU; biases and BatchNorm keep PyTorch's defaults. Optimiser: Adam with
PyTorch's defaults (betas 0.9/0.999, eps 1e-8, no weight decay).

:class:`StackedMLP` holds ``G`` such probes of the same depth as tensors with a leading member
axis (weights ``(G, d_in, d_out)``) and trains them in one forward/backward per mini-batch; each
member has its own learning rate, init and seed. Its Adam is written out on the stacked tensors
(the same update as ``torch.optim.Adam``) so that members can stop early independently:
:meth:`StackedMLP.keep` drops finished members from every tensor. :class:`SingleMLP` is the same
probe as a plain ``torch.nn.Sequential`` + ``torch.optim.Adam`` — the reference the stacked
version is benchmarked and tested against.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from echoic.evaluate.factored import InterpolatedRows

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
RELU_GAIN = math.sqrt(2.0)


@dataclass(frozen=True)
class ProbeSpec:
    """One probe: architecture, optimiser and seed (one grid point of one seed)."""

    hidden_layers: int = 1
    hidden_dim: int = 1024
    dropout: float = 0.1
    lr: float = 1e-3
    init: str = "xavier_uniform"  # "xavier_uniform" | "xavier_normal"
    batch_norm: bool = True
    seed: int = 0

    def shape_key(self) -> tuple[int, int, float, bool]:
        """Probes with equal keys can share one :class:`StackedMLP`."""
        return (self.hidden_layers, self.hidden_dim, self.dropout, self.batch_norm)


def layer_dims(spec: ProbeSpec, d_in: int, n_out: int) -> list[tuple[int, int]]:
    dims = [d_in] + [spec.hidden_dim] * spec.hidden_layers + [n_out]
    return list(itertools.pairwise(dims))


def init_weights(spec: ProbeSpec, d_in: int, n_out: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``[(W (d_in, d_out), b (d_out,)), ...]`` for one probe, from its own seeded generator."""
    gen = torch.Generator().manual_seed(int(spec.seed))
    layers = []
    for i, (a, b) in enumerate(layer_dims(spec, d_in, n_out)):
        gain = 1.0 if i == 0 else RELU_GAIN
        std = gain * math.sqrt(2.0 / (a + b))
        if spec.init == "xavier_uniform":
            w = (torch.rand(a, b, generator=gen) * 2 - 1) * (math.sqrt(3.0) * std)
        elif spec.init == "xavier_normal":
            w = torch.randn(a, b, generator=gen) * std
        elif spec.init == "torch_default":  # nn.Linear's kaiming_uniform(a=sqrt(5)) = U(±1/sqrt(a))
            w = (torch.rand(a, b, generator=gen) * 2 - 1) / math.sqrt(a)
        else:
            raise ValueError(
                f"init must be xavier_uniform, xavier_normal or torch_default; found {spec.init!r}"
            )
        bound = 1.0 / math.sqrt(a)  # nn.Linear's default bias init
        bias = (torch.rand(b, generator=gen) * 2 - 1) * bound
        layers.append((w, bias))
    return layers


def dropout_seed(spec: ProbeSpec, run_seed: int) -> int:
    """The seed of a probe's dropout masks: a function of the probe and the run (fold) only, so a
    probe sees the same masks whichever probes share its stack, stacked or alone."""
    text = f"{run_seed}|{spec.seed}|{spec.hidden_layers}|{spec.init}|{spec.lr!r}|{spec.dropout!r}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "little")


class StackedMLP:
    """``G`` probes of one shape trained together; tensors carry a leading member axis."""

    def __init__(
        self,
        specs: list[ProbeSpec],
        d_in: int,
        n_out: int,
        dropout_seeds: list[int] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        keys = {s.shape_key() for s in specs}
        if len(keys) != 1:
            raise ValueError(f"StackedMLP needs probes of one shape; found {sorted(keys)}")
        self.spec0 = specs[0]
        self.depth = self.spec0.hidden_layers
        self.device = dev = torch.device(device)
        # weights are drawn on the CPU from each probe's generator (the same init on any device)
        inits = [init_weights(s, d_in, n_out) for s in specs]
        self.params: list[torch.Tensor] = []
        for i in range(self.depth + 1):
            self.params.append(torch.stack([w[i][0] for w in inits]).to(dev).requires_grad_())
            self.params.append(torch.stack([w[i][1] for w in inits]).to(dev).requires_grad_())
            if i < self.depth and self.spec0.batch_norm:
                g, h = len(specs), self.spec0.hidden_dim
                self.params.append(torch.ones(g, h, device=dev).requires_grad_())
                self.params.append(torch.zeros(g, h, device=dev).requires_grad_())
        g, h = len(specs), self.spec0.hidden_dim
        self.buffers = [
            t
            for _ in range(self.depth if self.spec0.batch_norm else 0)
            for t in (torch.zeros(g, h, device=dev), torch.ones(g, h, device=dev))
        ]
        self.lr = torch.tensor([s.lr for s in specs])
        self.lr_scale = 1.0  # a schedule's factor on every member's lr (see FitConfig.lr_schedule)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.step = 0
        seeds = dropout_seeds if dropout_seeds is not None else [s.seed for s in specs]
        # one dropout stream per member, on the device (a CUDA stream differs from the CPU one)
        self.generators = [torch.Generator(device=dev).manual_seed(int(seed)) for seed in seeds]
        # member-by-member Adam suits a CPU's caches; an accelerator wants few, large kernels
        self.vectorised_adam = dev.type != "cpu"

    @property
    def size(self) -> int:
        return int(self.lr.shape[0])

    def forward(self, x: torch.Tensor | InterpolatedRows, train: bool) -> torch.Tensor:
        """Logits ``(G, N, C)`` of input ``(N, D)`` shared by all members.

        Hidden activations live as ``(N, G * H)``: the first layer is one GEMM for all members,
        and BatchNorm is PyTorch's own kernel over ``G * H`` channels (= per member and unit);
        later layers are a ``baddbmm`` per member. Rows given as :class:`InterpolatedRows` go
        through the first layer on their native frames (the same function, a quarter of the
        arithmetic for 4× interpolated timestamps).
        """
        p = iter(self.params)
        buffers = iter(self.buffers)
        g, n = self.size, x.shape[0]
        h = torch.empty(0)  # the previous layer's activations (N, G * H), set after layer 0
        for i in range(self.depth + 1):
            w, b = next(p), next(p)
            out = w.shape[2]
            if i == 0:  # (N, D) @ (D, G * out) + bias
                weight = w.permute(1, 0, 2).reshape(-1, g * out)
                if isinstance(x, InterpolatedRows):
                    flat = x.linear(weight, b.reshape(g * out))
                else:
                    flat = torch.addmm(b.reshape(g * out), x, weight)
                if i == self.depth:
                    return flat.view(n, g, out).transpose(0, 1)
            else:
                stacked = torch.baddbmm(b[:, None, :], h.view(n, g, -1).transpose(0, 1), w)
                if i == self.depth:
                    return stacked
                flat = stacked.transpose(0, 1).reshape(n, g * out)
            if self.spec0.batch_norm:
                gamma, beta = next(p), next(p)
                rm, rv = next(buffers), next(buffers)
                flat = F.batch_norm(
                    flat,
                    rm.view(-1),
                    rv.view(-1),
                    gamma.reshape(-1),
                    beta.reshape(-1),
                    training=train,
                    momentum=BN_MOMENTUM,
                    eps=BN_EPS,
                )
            if train and self.spec0.dropout > 0:
                flat = self._dropout(flat, g, n)
            h = torch.relu(flat)
        raise AssertionError("unreachable")

    def _dropout(self, flat: torch.Tensor, g: int, n: int) -> torch.Tensor:
        """Dropout on ``(N, G * H)`` with each member's mask from its own generator: exactly the
        masks ``torch.nn.Dropout`` draws for that probe alone from a global RNG seeded alike."""
        keep = 1.0 - self.spec0.dropout
        noise = torch.empty(g, n, flat.shape[1] // g, device=flat.device)
        for k, gen in enumerate(self.generators):
            noise[k].bernoulli_(keep, generator=gen)
        noise.div_(keep)
        return flat * noise.transpose(0, 1).reshape(n, -1)

    def adam_step(self) -> None:
        """One Adam update of every member (``torch.optim.Adam`` semantics, per-member lr).

        On a CPU, applied member by member on slices: each slice's tensors stay in cache through
        the chain of element-wise updates, which a single pass over ``G`` members' tensors would
        not. Elsewhere (``vectorised_adam``), all members at once: a GPU wants few, large kernels.
        """
        self.step += 1
        bc1 = 1 - ADAM_BETAS[0] ** self.step
        bc2_sqrt = math.sqrt(1 - ADAM_BETAS[1] ** self.step)
        steps = [lr * self.lr_scale / bc1 for lr in self.lr.tolist()]
        all_steps = torch.tensor(steps, device=self.device) if self.vectorised_adam else None
        with torch.no_grad():
            for p, m, v, buf in zip(
                self.params, self.exp_avg, self.exp_avg_sq, self._buffers(), strict=True
            ):
                grad = p.grad
                if grad is None:
                    continue
                if all_steps is not None:
                    shaped = all_steps.view(-1, *([1] * (p.ndim - 1)))
                    _adam_update(p.data, m, v, grad, buf, bc2_sqrt, shaped)
                else:
                    for k, step in enumerate(steps):
                        _adam_update(p.data[k], m[k], v[k], grad[k], buf[k], bc2_sqrt, step)
                p.grad = None

    def _buffers(self) -> list[torch.Tensor]:
        """One scratch tensor per parameter (kept between steps: no allocation per step)."""
        if (
            getattr(self, "_scratch", None) is None
            or len(self._scratch) != len(self.params)
            or any(b.shape != p.shape for b, p in zip(self._scratch, self.params, strict=True))
        ):
            self._scratch: list[torch.Tensor] = [
                torch.empty_like(p, requires_grad=False) for p in self.params
            ]
        return self._scratch

    def state(self, index: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Parameters and BatchNorm buffers (of members ``index``; default all), detached copies."""
        tensors = [t.detach() for t in [*self.params, *self.buffers]]
        return [t.clone() if index is None else t[index] for t in tensors]

    def load_state(self, state: list[torch.Tensor]) -> None:
        n = len(self.params)
        with torch.no_grad():
            for t, s in zip(self.params, state[:n], strict=True):
                t.copy_(s)
            for t, s in zip(self.buffers, state[n:], strict=True):
                t.copy_(s)

    def keep(self, index: torch.Tensor) -> None:
        """Keep only members ``index`` (1-D int64) in every tensor, optimiser state included."""
        self.params = [p.detach()[index].clone().requires_grad_() for p in self.params]
        self.buffers = [b[index].clone() for b in self.buffers]
        self.exp_avg = [m[index].clone() for m in self.exp_avg]
        self.exp_avg_sq = [v[index].clone() for v in self.exp_avg_sq]
        self.lr = self.lr[index]
        self.generators = [self.generators[int(k)] for k in index]


def _adam_update(
    p: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    grad: torch.Tensor,
    buf: torch.Tensor,
    bc2_sqrt: float,
    step: float | torch.Tensor,
) -> None:
    """Adam's in-place update of ``p`` (``step`` = lr / bias correction, a number or a tensor
    broadcasting over ``p``); ``buf`` is scratch space of ``p``'s shape."""
    b1, b2 = ADAM_BETAS
    m.lerp_(grad, 1 - b1)
    v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
    torch.sqrt(v, out=buf)
    buf.div_(bc2_sqrt).add_(ADAM_EPS)
    if isinstance(step, torch.Tensor):
        p.sub_(m * step / buf)
    else:
        p.addcdiv_(m, buf, value=-step)


class SingleMLP:
    """One probe as ``torch.nn.Sequential`` + ``torch.optim.Adam`` (the unvectorised reference).

    Same interface as :class:`StackedMLP` with ``G = 1``.
    """

    def __init__(
        self, specs: list[ProbeSpec], d_in: int, n_out: int, device: str | torch.device = "cpu"
    ) -> None:
        if len(specs) != 1:
            raise ValueError("SingleMLP trains exactly one probe")
        spec = specs[0]
        modules: list[torch.nn.Module] = []
        for i, (w, b) in enumerate(init_weights(spec, d_in, n_out)):
            linear = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                linear.weight.copy_(w.T)
                linear.bias.copy_(b)
            modules.append(linear)
            if i < spec.hidden_layers:
                if spec.batch_norm:
                    modules.append(torch.nn.BatchNorm1d(spec.hidden_dim))
                modules.append(torch.nn.Dropout(spec.dropout))
                modules.append(torch.nn.ReLU())
        self.net = torch.nn.Sequential(*modules).to(device)
        self.device = torch.device(device)
        self.optimiser = torch.optim.Adam(self.net.parameters(), lr=spec.lr)
        self.lr = torch.tensor([spec.lr])
        self.lr_scale = 1.0

    @property
    def size(self) -> int:
        return int(self.lr.shape[0])

    def forward(self, x: torch.Tensor | InterpolatedRows, train: bool) -> torch.Tensor:
        self.net.train(train)
        return self.net(x.dense() if isinstance(x, InterpolatedRows) else x)[None]

    def adam_step(self) -> None:
        for group in self.optimiser.param_groups:
            group["lr"] = float(self.lr[0]) * self.lr_scale
        self.optimiser.step()
        self.optimiser.zero_grad(set_to_none=True)

    def state(self, index: torch.Tensor | None = None) -> list[torch.Tensor]:
        """State tensors with a leading member axis of 1 (the layout :class:`StackedMLP` uses)."""
        return [t.detach().clone()[None] for t in self.net.state_dict().values()]

    def load_state(self, state: list[torch.Tensor]) -> None:
        keys = list(self.net.state_dict())
        self.net.load_state_dict(dict(zip(keys, [s[0] for s in state], strict=True)))

    def keep(self, index: torch.Tensor) -> None:
        if index.numel() != 1:
            raise ValueError("SingleMLP holds one probe")
