"""Per-sample gradient norms (the grad_norm attack): the closed form for Linear stacks and the torch.func path
both equal a plain loop of one autograd call per sample (issue 18: a cheaper audit)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from safecompress.attacks.grad_norms import _vmap_norms, linear_stack, per_sample_grad_norms
from safecompress.models import ModelSpec, build_model
from safecompress.train import eval_mode

CPU = torch.device("cpu")


def loop_norms(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The definition: one backward pass per sample, the norm over every parameter (float64 sums)."""
    params = list(model.parameters())
    out = []
    with eval_mode(model):
        for i in range(len(X)):
            loss = F.cross_entropy(model(X[i : i + 1]), y[i : i + 1])
            grads = torch.autograd.grad(loss, params)
            out.append(sum(g.double().pow(2).sum() for g in grads).sqrt())
    return torch.stack(out)


def _sparse(model: nn.Module, density: float, seed: int) -> nn.Module:
    """Zero all but ``density`` of every weight matrix (a sparse model, as the audit sees it)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_((torch.rand(p.shape, generator=gen) < density).to(p.dtype))
    return model


def _binary(n: int, d: int, k: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=gen) < 0.1).float(), torch.randint(0, k, (n,), generator=gen)


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 6)

    def forward(self, x):
        return self.a(torch.tanh(self.a(x)))


def _models():
    torch.manual_seed(0)
    shared = nn.Linear(6, 6)
    return {
        "mlp": (build_model(ModelSpec("mlp", (40,), 7, width=0.25), 0), (40,), 7),
        "sparse mlp": (_sparse(build_model(ModelSpec("mlp", (40,), 7, width=0.25), 1), 0.05, 2), (40,), 7),
        "image mlp": (build_model(ModelSpec("mlp", (1, 6, 6), 5, width=0.125), 3), (1, 6, 6), 5),
        "no bias, nested": (
            nn.Sequential(nn.Linear(6, 8, bias=False), nn.Sequential(nn.ReLU(), nn.Linear(8, 4))),
            (6,),
            4,
        ),
        "batchnorm mlp": (build_model(ModelSpec("mlp", (12,), 5, width=0.125, norm="batch"), 4), (12,), 5),
        "cnn": (build_model(ModelSpec("cnn", (3, 8, 8), 4, width=0.25), 5), (3, 8, 8), 4),
        "tied": (Tied(), (6,), 6),
        "shared layer": (nn.Sequential(shared, nn.Tanh(), shared), (6,), 6),
    }


MODELS = _models()
CLOSED_FORM = {"mlp", "sparse mlp", "image mlp", "no bias, nested"}


def test_only_plain_linear_stacks_take_the_closed_form():
    assert {name for name, (m, _, _) in MODELS.items() if linear_stack(m) is not None} == CLOSED_FORM


# a module listed twice in a Sequential is left without its parameters by torch.func.functional_call (torch
# 2.13): it only checks that such a model does not take the closed form
@pytest.mark.parametrize("name", [n for n in MODELS if n != "shared layer"])
def test_per_sample_grad_norms_equal_a_per_sample_loop(name):
    model, shape, k = MODELS[name]
    gen = torch.Generator().manual_seed(9)
    X, y = torch.randn(37, *shape, generator=gen), torch.randint(0, k, (37,), generator=gen)
    got = per_sample_grad_norms(model, X, y, CPU, chunk=16)
    want = loop_norms(model, X, y)
    assert got.dtype == torch.float32 and got.shape == (37,)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-7)


def test_closed_form_equals_the_vmap_path_on_sparse_binary_records_across_batches():
    """Texas-like records (sparse binary features, many classes) on a 5 %-dense MLP, over more rows than one
    batch of the closed form: the same norms as the torch.func path the attack used before."""
    model = _sparse(build_model(ModelSpec("mlp", (300,), 20, width=0.125), 6), 0.05, 7)
    X, y = _binary(1100, 300, 20, 8)
    new = per_sample_grad_norms(model, X, y, CPU)
    with eval_mode(model):
        old = _vmap_norms(model, X, y, CPU, 64)
    torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-7)
    # the attack's ranking is the old one but for norms closer than float rounding (which may swap)
    in_old_order = new[old.argsort()].double()
    assert (in_old_order.diff() >= -1e-5 * in_old_order[1:]).all()


def test_closed_form_leaves_the_model_and_its_gradients_alone():
    model = build_model(ModelSpec("mlp", (10,), 3, width=0.125), 0).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X, y = torch.randn(5, 10), torch.randint(0, 3, (5,))
    with torch.no_grad():  # the caller's no_grad does not stop the attack
        per_sample_grad_norms(model, X, y, CPU)
    assert all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not model._forward_hooks and not any(m._forward_hooks for m in model.modules())
