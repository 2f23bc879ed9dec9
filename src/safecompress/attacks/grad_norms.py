"""Per-sample gradient norms ‖∇θ loss(x, y)‖₂ over all of a model's parameters (the ``grad_norm`` attack's signal).

For a stack of ``nn.Linear`` layers joined by per-sample element-wise modules (an MLP: Flatten, Tanh, ReLU, ...),
the per-sample gradient of a layer's weight is the outer product δ aᵀ of the gradient δ of the loss w.r.t. the
layer's output and the layer's input a, so its squared norm is ‖δ‖²·‖a‖² and the bias's is ‖δ‖² (Goodfellow,
"Efficient Per-Example Gradient Computations", 2015). One ordinary forward and backward pass over a batch then
gives every sample's norm, without materialising a per-sample gradient (for Texas's 6,169 × 1,024 first layer,
25 MB per sample). Any other model takes the general path: torch.func's vmap of grad, which materialises the
per-sample gradients a chunk of samples at a time. The two agree to float rounding (tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from ..train import eval_mode

# modules that act on each sample on its own, element-wise or by reshaping its features, and hold no parameters;
# in eval mode (every query runs in it) dropout is the identity
_PER_SAMPLE = (
    nn.Flatten,
    nn.Identity,
    nn.Dropout,
    nn.Tanh,
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Softplus,
)


def per_sample_grad_norms(
    module: nn.Module, X: torch.Tensor, y: torch.Tensor, device: torch.device, chunk: int = 64
) -> torch.Tensor:
    """‖∇θ loss(x, y)‖₂ for every sample (cross-entropy, eval mode), float32 on the CPU: closed form for a
    Linear stack (:func:`linear_stack`), else torch.func over ``chunk`` samples at a time."""
    with eval_mode(module):
        linears = linear_stack(module)
        if linears is not None:
            norms = _linear_stack_norms(module, linears, X, y, device)
            if norms is not None:
                return norms
        return _vmap_norms(module, X, y, device, chunk)


def linear_stack(module: nn.Module) -> list[nn.Linear] | None:
    """The Linear layers of ``module`` when it is an ``nn.Sequential`` (nested ones too) of Linear layers and
    parameter-free per-sample modules, each Linear holding its own parameters; None otherwise (the general path).
    Only such a model is known to use each parameter once, in its own layer's product, per sample."""
    if not isinstance(module, nn.Sequential):
        return None
    linears: list[nn.Linear] = []
    for child in module:  # every entry, a module listed twice included (children() lists it once)
        if isinstance(child, nn.Sequential):
            inner = linear_stack(child)
            if inner is None:
                return None
            linears += inner
        elif type(child) is nn.Linear:
            linears.append(child)
        elif not isinstance(child, _PER_SAMPLE) or any(True for _ in child.parameters()):
            return None
    owned = [id(p) for layer in linears for p in layer.parameters(recurse=False)]
    if len(set(owned)) != len(owned) or len(owned) != len({id(p) for p in module.parameters()}):
        return None  # a parameter shared between layers, or one outside them
    return linears


def _linear_stack_norms(
    module: nn.Module, linears: list[nn.Linear], X: torch.Tensor, y: torch.Tensor, device: torch.device
) -> torch.Tensor | None:
    """Σ_layers ‖δ‖²(‖a‖² + 1 if the layer has a bias), per sample, from one forward and backward pass per
    batch (float64 sums); None when a layer is not called exactly once on (batch, features) inputs."""
    params = {k: v.detach().requires_grad_(True) for k, v in module.named_parameters()}
    buffers = {k: v.detach() for k, v in module.named_buffers()}
    seen: list[tuple[nn.Linear, torch.Tensor, torch.Tensor]] = []

    def capture(layer, inputs, output):
        seen.append((layer, inputs[0], output))

    handles = [layer.register_forward_hook(capture) for layer in linears]
    norms = []
    try:
        for i in range(0, len(X), 1024):
            xb, yb = X[i : i + 1024].to(device), y[i : i + 1024].to(device)
            seen.clear()
            with torch.enable_grad():
                out = functional_call(module, (params, buffers), (xb,))
                n = len(xb)
                if [s[0] for s in seen] != linears or any(
                    a.dim() != 2 or len(a) != n or z.shape != (n, layer.out_features) for layer, a, z in seen
                ):
                    return None
                if out.dim() != 2 or len(out) != n:
                    return None
                # the sum's gradient w.r.t. a layer's output is, row by row, each sample's own δ
                deltas = torch.autograd.grad(F.cross_entropy(out, yb, reduction="sum"), [z for _, _, z in seen])
            sq = torch.zeros(n, dtype=torch.float64, device=out.device)
            for (layer, a, _), d in zip(seen, deltas):
                d2 = d.detach().double().pow(2).sum(1)
                a2 = a.detach().double().pow(2).sum(1)
                sq += d2 * (a2 + 1.0) if layer.bias is not None else d2 * a2
            norms.append(sq.sqrt().float().cpu())
    finally:
        for h in handles:
            h.remove()
        seen.clear()
    return torch.cat(norms) if norms else torch.zeros(0)


def _vmap_norms(module, X, y, device, chunk):
    params = {k: v.detach() for k, v in module.named_parameters()}
    buffers = {k: v.detach() for k, v in module.named_buffers()}

    def sample_loss(p, xb, yb):
        out = functional_call(module, (p, buffers), (xb[None],))
        return F.cross_entropy(out, yb[None])

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    norms = []
    for i in range(0, len(X), chunk):
        grads = per_sample(params, X[i : i + chunk].to(device), y[i : i + chunk].to(device))
        sq = sum(g.flatten(1).pow(2).sum(1) for g in grads.values())
        norms.append(sq.sqrt().cpu())
    return torch.cat(norms)
