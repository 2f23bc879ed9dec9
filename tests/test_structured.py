"""Structured (channel) sparsity: unit masks, their budget, the update, the smaller exported network (issue 18)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from runargs import ci_args
from safecompress.checkpoint import load_model, read_model_file
from safecompress.cli import main
from safecompress.config import TrainConfig, load_config
from safecompress.errors import ConfigError, SafeCompressError
from safecompress.export import FORMATS, export_run
from safecompress.export.structured import load_structured
from safecompress.models import ModelSpec, build_model, count_parameters
from safecompress.sparse.allocation import layer_counts
from safecompress.sparse.criteria import GROW, PRUNE
from safecompress.sparse.engine import DynamicSparse, prune_and_grow
from safecompress.sparse.masks import apply_masks, count_nonzero, prunable_parameters, random_masks
from safecompress.sparse.schedule import UpdateSchedule
from safecompress.sparse.shrink import shrink
from safecompress.sparse.structures import STRUCTURES
from safecompress.sparse.structures.channel import Channel, check_columns, unit_scores
from safecompress.sparse.units import alive_units, unit_chain
from safecompress.train import Trainer

SPECS = {
    "cnn-batch": ModelSpec("cnn", (1, 12, 12), 4, width=0.5),
    "cnn-none": ModelSpec("cnn", (3, 8, 8), 4, width=0.5, norm="none"),
    "mlp-none": ModelSpec("mlp", (20,), 4, width=0.1),
    "mlp-batch": ModelSpec("mlp", (20,), 4, width=0.1, norm="batch"),
}


def _channel(spec: ModelSpec, density: float, seed: int = 0, dense_first: bool = False):
    model = build_model(spec, seed)
    params = prunable_parameters(model)
    shapes = {n: tuple(p.shape) for n, p in params.items()}
    structure = Channel(model, dense_first=dense_first)
    masks = structure.initial_masks(layer_counts(shapes, density, "erk"), torch.Generator().manual_seed(seed))
    return model, structure, masks


def _randomise_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and affine parameters (as after training)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=g))
                m.bias.copy_(torch.randn(m.num_features, generator=g))


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("density", [0.25, 0.5])
def test_initial_channel_masks_are_unit_masks_at_the_target_density(name, density):
    spec = SPECS[name]
    model, structure, masks = _channel(spec, density)
    chain = structure.chain
    assert check_columns(chain, masks)
    total = sum(m.numel() for m in masks.values())
    kept = count_nonzero(masks)
    # never above the budget, and below it by less than the largest cost of one more unit
    budget = round(density * total)
    one_unit = max(
        math.prod(m.shape[1:]) + (0 if i + 1 == len(chain) else masks[chain[i + 1].name][0].numel())
        for i, m in enumerate(masks[u.name] for u in chain)
    )
    assert budget - one_unit < kept <= budget
    assert structure.stats(masks)["units"][chain[-1].name] == [spec.n_classes, spec.n_classes]  # classifier whole
    assert bool(alive_units(masks[chain[-1].name]).all())


def test_dense_first_keeps_the_first_layer_whole():
    _, structure, masks = _channel(SPECS["cnn-batch"], 0.5, dense_first=True)
    assert bool(alive_units(masks[structure.chain[0].name]).all())


def test_too_low_a_density_for_whole_units_is_a_clear_error():
    with pytest.raises(ConfigError, match="too low for channel sparsity"):
        _channel(SPECS["mlp-none"], 0.001)


def _blobs(n=192, d=20, k=4):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, k, (n,), generator=g)
    return torch.randn(k, d, generator=g)[y] * 3 + torch.randn(n, d, generator=g), y


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_masks_stay_unit_masks_after_every_update_and_the_count_is_kept(norm):
    X, y = _blobs()
    spec = ModelSpec("mlp", (20,), 4, width=0.1, norm=norm)
    model, structure, masks = _channel(spec, 0.4, seed=3)
    seen, replaced = [], []

    class Check(DynamicSparse):
        def on_step_end(self, trainer):
            before = {n: alive_units(m) for n, m in self.masks.items()}
            super().on_step_end(trainer)
            assert check_columns(structure.chain, self.masks)
            for name, p in prunable_parameters(self.model).items():
                assert (p[~self.masks[name]] == 0).all()
                alive = alive_units(self.masks[name])
                grown = alive & ~before[name]
                if grown.any():  # a grown unit has fresh (non-zero) incoming weights
                    assert (p.detach().reshape(p.shape[0], -1)[grown] != 0).any(dim=1).all()
                replaced.append(int((alive != before[name]).sum()))
            seen.append(count_nonzero(self.masks))

    engine = Check(
        model, masks, UpdateSchedule(2, 0.5, 40), PRUNE.get("magnitude"), GROW.get("gradient"), structure=structure
    )
    cfg = TrainConfig(epochs=4, batch_size=32, optimizer="sgd", lr=0.05, weight_decay=1e-3)
    Trainer(model, cfg, seed=0, device=torch.device("cpu"), callbacks=[engine]).fit(X, y)
    assert set(seen) == {count_nonzero(masks)}
    assert sum(replaced) > 0 and len(engine.updates) > 0
    stats = engine.stats()
    assert stats["structure"] == "channel" and stats["itop_rate"] > stats["prunable_density"]
    # the trained model still shrinks exactly
    model.eval()
    small, _ = shrink(model, engine.masks)
    with torch.no_grad():
        assert float((small(X) - model(X)).abs().max()) <= 1e-5


def test_unit_scores_are_row_norms_or_signed_means():
    w = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    assert torch.allclose(unit_scores(w.abs()), torch.tensor([5.0, 1.0]))
    assert torch.allclose(unit_scores(torch.tensor([[1.0, -3.0], [1.0, 1.0]])), torch.tensor([-1.0, 1.0]))


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("density", [0.25, 0.5])
def test_the_shrunk_network_computes_the_masked_models_outputs(name, density):
    spec = SPECS[name]
    model, _, masks = _channel(spec, density, seed=1)
    _randomise_norms(model, seed=2)
    apply_masks(model, masks)
    model.eval()
    small, units = shrink(model, masks)
    small.eval()
    x = torch.randn(9, *spec.input_shape, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert float((small(x) - model(x)).abs().max()) <= 1e-5
    assert count_parameters(small) < count_parameters(model)
    weights = sum(p.numel() for n, p in small.named_parameters() if n in prunable_parameters(small))
    assert weights == count_nonzero(masks)  # the masks count exactly the smaller network's weights
    assert all(kept <= of for kept, of in units.values())


def test_an_unstructured_mask_shrinks_only_what_reaches_nothing():
    spec = SPECS["mlp-none"]
    model = build_model(spec, 0)
    params = prunable_parameters(model)
    shapes = {n: p.shape for n, p in params.items()}
    masks = random_masks(shapes, layer_counts(shapes, 0.3, "erk"), torch.Generator().manual_seed(0))
    apply_masks(model, masks)
    model.eval()
    small, _ = shrink(model, masks)
    x = torch.randn(5, 20)
    with torch.no_grad():
        assert float((small(x) - model(x)).abs().max()) <= 1e-5


@pytest.mark.parametrize(
    "spec, needle",
    [
        (ModelSpec("resnet18", (3, 8, 8), 4, width=0.125), "own forward"),
        (ModelSpec("vgg-c", (3, 32, 32), 4, width=0.0625), "own forward"),
        (ModelSpec("cnn", (3, 8, 8), 4, width=0.5, norm="group"), "GroupNorm"),
    ],
)
def test_architectures_that_cannot_be_cut_are_refused(spec, needle):
    model = build_model(spec, 0)
    with pytest.raises(ConfigError, match=needle):
        unit_chain(model)
    with pytest.raises(ConfigError, match="sparse.structure=unstructured"):
        STRUCTURES.get("channel")(model)
    with pytest.raises(ConfigError):
        shrink(model, {})


def test_the_default_is_unstructured_and_its_update_is_the_per_weight_one():
    cfg = load_config(overrides=["method.name=rigl"])
    assert cfg.sparse.structure == "unstructured"
    assert STRUCTURES.get("unstructured").__name__ == "Unstructured"
    # an engine without a structure updates exactly as prune_and_grow per layer did before structures existed
    X, y = _blobs()
    model = build_model(SPECS["mlp-none"], 0)
    params = prunable_parameters(model)
    shapes = {n: p.shape for n, p in params.items()}
    masks = random_masks(shapes, layer_counts(shapes, 0.3, "erk"), torch.Generator().manual_seed(0))
    prune, grow = PRUNE.get("magnitude"), GROW.get("gradient")
    expected = []

    class Spy(DynamicSparse):
        def maybe_update(self, trainer):
            if self.schedule.is_update_step(trainer.state.step):
                f = self.schedule.fraction_at(trainer.state.step)
                expected.append(
                    {
                        n: prune_and_grow(s, round(f * int(s.mask.sum())), prune, grow)
                        for n, s in self.layer_states(trainer).items()
                    }
                )
                super().maybe_update(trainer)
                for n, m in expected[-1].items():
                    assert torch.equal(m, self.masks[n])

    engine = Spy(model, masks, UpdateSchedule(2, 0.3, 20), prune, grow)
    Trainer(model, TrainConfig(epochs=2, batch_size=32), seed=0, device=torch.device("cpu"), callbacks=[engine]).fit(
        X, y
    )
    assert expected and "structure" not in engine.stats()


def test_a_bad_structure_or_an_unsupporting_method_is_a_clear_config_error():
    with pytest.raises(
        ConfigError, match="sparse.structure: unknown sparse structure 'chanel'. Did you mean 'channel'"
    ):
        load_config(overrides=["sparse.structure=chanel"])
    for method in ("gmp", "oneshot"):
        with pytest.raises(ConfigError, match=f"method '{method}' cannot train with sparse.structure='channel'"):
            load_config(overrides=[f"method.name={method}", "sparse.structure=channel"])
    load_config(overrides=["method.name=dense", "sparse.structure=channel"])  # dense ignores the sparse section


@pytest.fixture(scope="module", params=["rigl", "safecompress"])
def channel_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"structured-{request.param}") / "run"
    settings = {
        "method.name": request.param,
        "model.name": "cnn" if request.param == "rigl" else "mlp",
        "sparse.structure": "channel",
        "sparse.density": 0.3,
        "sparse.update_every": 3,
        "train.epochs": 2,
    }
    assert main(["run", *ci_args(settings), "--out", str(out)]) == 0
    return out


def test_a_channel_run_exports_a_smaller_network_with_the_same_outputs(channel_run):
    report = json.loads((channel_run / "report.json").read_text())
    sparse = report["method_details"]["sparse"]
    assert sparse["structure"] == "channel" and sparse["topology_updates"] > 0
    assert abs(sparse["prunable_density"] - 0.3) < 0.02 and sparse["prunable_density"] <= 0.3
    _, masks, _ = read_model_file(channel_run / "model.safetensors")
    model = load_model(channel_run / "model.safetensors")
    assert check_columns(unit_chain(model), masks)
    path, details = export_run(channel_run / "model.safetensors", "structured", channel_run / "s.safetensors")
    small = load_structured(path)
    assert details["parameters"] == count_parameters(small) < count_parameters(model)
    assert details["units_removed"] > 0
    x = torch.randn(6, *model_input_shape(channel_run), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert float((small(x) - model(x)).abs().max()) <= 1e-5
    assert FORMATS.get("structured").filename == "model-structured.safetensors"


def model_input_shape(run) -> list[int]:
    return read_model_file(run / "model.safetensors")[2]["model"]["input_shape"]


def test_the_structured_export_refuses_a_residual_net(tmp_path):
    from safecompress.checkpoint import save_model

    spec = ModelSpec("resnet18", (3, 8, 8), 4, width=0.125)
    path = save_model(build_model(spec, 0), spec, tmp_path / "m.safetensors")
    with pytest.raises(SafeCompressError, match="another format"):
        export_run(path, "structured", tmp_path / "s.safetensors")
    assert not (tmp_path / "s.safetensors").exists()
