"""The sparse engine: allocation, criteria, prune/grow, masks through training, packing, inference."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from safecompress.checkpoint import load_model, read_model_file, save_model
from safecompress.config import TrainConfig
from safecompress.errors import ConfigError
from safecompress.models import ModelSpec, build_model
from safecompress.sparse.allocation import layer_counts
from safecompress.sparse.criteria import GROW, PRUNE, LayerState
from safecompress.sparse.engine import DynamicSparse, GradualPruning, SparseEngine, prune_and_grow
from safecompress.sparse.inference import CSRConv2d, CSRLinear, sparse_inference
from safecompress.sparse.masks import count_nonzero, prunable_parameters, random_masks
from safecompress.sparse.packing import pack, unpack
from safecompress.sparse.schedule import UpdateSchedule, gmp_density
from safecompress.train import Trainer

shape_st = st.one_of(
    st.tuples(st.integers(1, 64), st.integers(1, 64)),
    st.tuples(st.integers(1, 16), st.integers(1, 8), st.sampled_from([1, 3]), st.sampled_from([1, 3])),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(shape_st, min_size=1, max_size=6), st.floats(0.01, 1.0), st.sampled_from(["erk", "uniform"]))
def test_allocation_hits_the_target_exactly(shapes, density, dist):
    shapes = {f"l{i}": s for i, s in enumerate(shapes)}
    counts = layer_counts(shapes, density, dist)
    total = sum(math.prod(s) for s in shapes.values())
    assert sum(counts.values()) == round(density * total)
    assert all(0 <= counts[n] <= math.prod(s) for n, s in shapes.items())


def test_erk_favours_small_layers_and_falls_back_to_dense():
    shapes = {"small": (10, 3), "big": (1000, 1000)}
    counts = layer_counts(shapes, 0.05, "erk")
    assert counts["small"] == 30  # would exceed density 1 -> dense
    assert counts["small"] / 30 > counts["big"] / 1e6
    with pytest.raises(ConfigError, match="dense"):
        layer_counts({"a": (100, 100), "b": (10, 10)}, 0.001, "erk", dense_layers=("a",))


def _state(shape, density, seed=0, grad=True):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g)
    mask = torch.rand(shape, generator=g) < density
    return LayerState(
        weight=w * mask,
        mask=mask,
        grad=torch.randn(shape, generator=g) if grad else None,
        momentum=torch.randn(shape, generator=g),
        ever_active=mask.clone(),
        generator=g,
        gap_grad=torch.randn(shape, generator=g),
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 10_000),
    st.floats(0.05, 0.95),
    st.integers(0, 200),
    st.sampled_from(PRUNE.names()),
    st.sampled_from(GROW.names()),
)
def test_prune_grow_conserves_count_and_grows_only_inactive(seed, density, n, prune, grow):
    s = _state((20, 15), density, seed)
    new = prune_and_grow(s, n, PRUNE.get(prune), GROW.get(grow))
    assert int(new.sum()) == int(s.mask.sum())
    grown = new & ~s.mask
    assert (s.weight[grown] == 0).all()  # grown entries were zero (inactive) before
    k = min(n, int(s.mask.sum()), int((~s.mask).sum()))
    assert int(grown.sum()) == k


def test_magnitude_prune_and_gradient_grow_pick_the_right_entries():
    w = torch.tensor([[0.1, -5.0, 0.0, 0.0], [3.0, 0.01, 0.0, 0.0]])
    mask = w != 0
    grad = torch.tensor([[0.0, 0.0, 9.0, 0.5], [0.0, 0.0, 0.2, 7.0]])
    s = LayerState(w, mask, grad, None, mask.clone(), torch.Generator().manual_seed(0))
    new = prune_and_grow(s, 2, PRUNE.get("magnitude"), GROW.get("gradient"))
    expected = torch.tensor([[False, True, True, False], [True, False, False, True]])
    assert torch.equal(new, expected)


def test_set_prune_removes_small_positive_and_large_negative():
    w = torch.tensor([0.9, 0.1, 0.5, -0.05, -0.8, -0.4])
    s = LayerState(w, torch.ones(6, dtype=torch.bool), None, None, torch.ones(6, dtype=torch.bool), torch.Generator())
    score = PRUNE.get("set")(s)
    dropped = set(torch.topk(score, 2, largest=False).indices.tolist())
    assert dropped == {1, 3}  # smallest positive (0.1) and the negative closest to zero (-0.05)


def test_unfired_grow_prefers_never_active():
    mask = torch.tensor([True, False, False, False])
    ever = torch.tensor([True, True, False, True])
    s = LayerState(torch.tensor([1.0, 0, 0, 0]), mask, None, None, ever, torch.Generator().manual_seed(0))
    assert int(GROW.get("unfired")(s).argmax()) == 2


def test_schedules():
    sch = UpdateSchedule(every=10, fraction=0.5, stop=100, decay="cosine")
    assert [s for s in range(0, 120) if sch.is_update_step(s)] == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert (
        sch.fraction_at(0) == 0.5
        and sch.fraction_at(50) == pytest.approx(0.25)
        and sch.fraction_at(100) == pytest.approx(0)
    )
    assert UpdateSchedule(10, 0.5, 100, "linear").fraction_at(50) == pytest.approx(0.25)
    assert gmp_density(0, 10, 50, 0.1) == 1.0 and gmp_density(50, 10, 50, 0.1) == 0.1
    assert 0.1 < gmp_density(30, 10, 50, 0.1) < 1.0


def _blobs(n=256, d=12, k=3):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, k, (n,), generator=g)
    return torch.randn(k, d, generator=g)[y] * 3 + torch.randn(n, d, generator=g), y


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_masks_survive_optimizer_steps_momentum_and_updates(optimizer):
    X, y = _blobs()
    model = build_model(ModelSpec("mlp", (12,), 3, width=0.05), 0)
    params = prunable_parameters(model)
    counts = {n: max(1, p.numel() // 5) for n, p in params.items()}
    masks = random_masks({n: p.shape for n, p in params.items()}, counts, torch.Generator().manual_seed(1))
    seen = []

    class Check(DynamicSparse):
        def on_step_end(self, trainer):
            super().on_step_end(trainer)
            for name, p in prunable_parameters(self.model).items():
                assert (p[~self.masks[name]] == 0).all()
                for v in trainer.optimizer.state[p].values():
                    if torch.is_tensor(v) and v.shape == p.shape:
                        assert (v[~self.masks[name]] == 0).all()
            seen.append(count_nonzero(self.masks))

    engine = Check(model, masks, UpdateSchedule(3, 0.3, 30), PRUNE.get("magnitude"), GROW.get("gradient"))
    cfg = TrainConfig(epochs=3, batch_size=32, optimizer=optimizer, lr=0.05, weight_decay=1e-3)
    Trainer(model, cfg, seed=0, device=torch.device("cpu"), callbacks=[engine]).fit(X, y)
    assert set(seen) == {sum(counts.values())}
    assert len(engine.updates) > 0 and engine.stats()["itop_rate"] > engine.stats()["prunable_density"]


def test_gradual_pruning_reaches_exact_counts():
    X, y = _blobs()
    model = build_model(ModelSpec("mlp", (12,), 3, width=0.05), 0)
    params = prunable_parameters(model)
    counts = layer_counts({n: tuple(p.shape) for n, p in params.items()}, 0.1, "uniform")
    engine = GradualPruning(model, counts, start=2, end=20, every=4, distribution="uniform", density=0.1)
    Trainer(model, TrainConfig(epochs=3, batch_size=32), seed=0, device=torch.device("cpu"), callbacks=[engine]).fit(
        X, y
    )
    assert {n: int(m.sum()) for n, m in engine.masks.items()} == counts
    assert len(engine.updates) >= 4


@pytest.mark.parametrize("values,tol", [("fp32", 0.0), ("fp16", 1e-3), ("int8", 2e-2)])
def test_pack_roundtrip(values, tol):
    s = _state((37, 11), 0.2, seed=3)
    back = unpack(pack(s.weight, s.mask, values), (37, 11))
    assert torch.equal(back == 0, ~s.mask | (s.weight == 0))
    err = (back - s.weight).abs().max()
    assert err <= tol * s.weight.abs().max()
    if values == "fp32":
        assert torch.equal(back, s.weight)


def test_packed_model_file_is_small_and_exact(tmp_path):
    spec = ModelSpec("mlp", (600,), 100)
    model = build_model(spec, 0)
    params = prunable_parameters(model)
    counts = layer_counts({n: tuple(p.shape) for n, p in params.items()}, 0.05, "erk")
    engine = SparseEngine(model, random_masks({n: p.shape for n, p in params.items()}, counts, torch.Generator()))
    with torch.no_grad():
        for n, p in params.items():
            p.mul_(engine.masks[n])
    path = save_model(model, spec, tmp_path / "m.safetensors", masks=engine.masks)
    dense_path = save_model(model, spec, tmp_path / "d.safetensors")
    nnz = sum(counts.values()) + sum(p.numel() for n, p in model.named_parameters() if n not in params)
    n_params = sum(p.numel() for p in model.parameters())
    header = 8 + int.from_bytes(path.read_bytes()[:8], "little")
    payload = path.stat().st_size - header
    assert payload <= 1.05 * (nnz * 4 + n_params / 8)
    assert header < 8192
    assert dense_path.stat().st_size / path.stat().st_size > 16  # issue 18: entropy-coded masks (12x with raw bits)
    back = load_model(path)
    x = torch.randn(4, 600)
    assert torch.equal(back(x), model.eval()(x))
    _, masks, meta = read_model_file(path)
    assert all(torch.equal(masks[n], engine.masks[n]) for n in masks) and meta["values"] == "fp32"


def _sparsify(model, density, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in prunable_parameters(model).values():
            p.mul_(torch.rand(p.shape, generator=g) < density)
    return model.eval()


def test_sparse_inference_matches_dense():
    mlp = _sparsify(build_model(ModelSpec("mlp", (600,), 100), 0), 0.05)
    fast = sparse_inference(mlp)
    assert any(isinstance(m, CSRLinear) for m in fast.modules())
    x = torch.randn(16, 600)
    assert torch.allclose(fast(x), mlp(x), atol=1e-5)
    cnn = _sparsify(build_model(ModelSpec("cnn", (3, 32, 32), 10), 0), 0.03)
    fast = sparse_inference(cnn, conv_max_density=0.05)
    assert any(isinstance(m, CSRConv2d) for m in fast.modules())
    x = torch.randn(5, 3, 32, 32)
    assert torch.allclose(fast(x), cnn(x), atol=1e-5)
    dense_cnn = build_model(ModelSpec("cnn", (3, 32, 32), 10), 0).eval()
    assert not any(isinstance(m, (CSRConv2d, CSRLinear)) for m in sparse_inference(dense_cnn).modules())


def test_csr_conv_handles_stride_and_bias():
    conv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=True)
    with torch.no_grad():
        conv.weight.mul_(torch.rand(conv.weight.shape) < 0.3)
    x = torch.randn(2, 4, 9, 9)
    assert torch.allclose(CSRConv2d(conv)(x), conv(x), atol=1e-5)


def test_rescale_fan_in_restores_each_units_dense_variance():
    from safecompress.sparse.masks import random_masks, rescale_fan_in

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(400, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    x = torch.randn(512, 400)
    bias = model[0].bias.detach().clone()
    dense_out = (model[0](x) - bias).std().item()
    shapes = {n: p.shape for n, p in model.named_parameters() if p.dim() > 1}
    masks = random_masks(shapes, {"0.weight": 400 * 64 // 20, "2.weight": 640 // 2}, torch.Generator().manual_seed(1))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in masks:
                p.mul_(masks[n])
    sparse_out = (model[0](x) - bias).std().item()
    rescale_fan_in(model, masks)
    rescaled_out = (model[0](x) - bias).std().item()
    assert sparse_out < 0.35 * dense_out  # 5 % of the inputs: ~sqrt(0.05) of the signal
    assert float(rescaled_out) == pytest.approx(float(dense_out), rel=0.25)
    w = model[0].weight.detach()
    assert bool(((w != 0) <= masks["0.weight"]).all())  # zeros stay zeros
