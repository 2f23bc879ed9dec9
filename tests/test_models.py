import pytest
import torch

from safecompress.checkpoint import load_model, save_model
from safecompress.errors import ConfigError
from safecompress.models import MODELS, ModelSpec, build_model, count_parameters

SHAPES = {"image": (3, 32, 32), "tabular": (600,), "text": (16,)}
VOCAB = 100  # text models: token ids in [0, VOCAB)


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("norm", ["auto", "batch", "group", "none"])
def test_every_model_builds_and_runs(name, norm):
    entry = MODELS.get(name)
    shape = SHAPES[entry.kinds[0]]
    text = entry.kinds[0] == "text"
    model = build_model(ModelSpec(name, shape, 7, width=0.25, norm=norm, vocab_size=VOCAB if text else 0), seed=0)
    x = torch.randint(0, VOCAB, (2, *shape)).float() if text else torch.randn(2, *shape)
    out = model.eval()(x)
    assert out.shape == (2, 7)
    has_bn = any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in model.modules())
    if norm in ("group", "none"):
        assert not has_bn  # DP-SGD needs models without BatchNorm


def test_width_multiplier_scales_parameters():
    small = count_parameters(build_model(ModelSpec("cnn", (3, 32, 32), 10, width=0.5), 0))
    big = count_parameters(build_model(ModelSpec("cnn", (3, 32, 32), 10, width=1.0), 0))
    assert 2.5 < big / small < 4.5


def test_paper_architectures():
    mlp = build_model(ModelSpec("mlp", (600,), 100), 0)
    linears = [m for m in mlp.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [1024, 512, 256, 128, 100]
    assert any(isinstance(m, torch.nn.Tanh) for m in mlp.modules())
    vgg = build_model(ModelSpec("vgg-c", (3, 32, 32), 100), 0)
    convs = [m for m in vgg.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13 and sum(c.kernel_size == (1, 1) for c in convs) == 3
    assert vgg.classifier[0].in_features == 2048  # 1x1 convs with padding 1 grow the maps, as in the paper


def test_seeded_init_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model(ModelSpec("mlp", (20,), 3), seed=4)
    after = torch.rand(1)
    b = build_model(ModelSpec("mlp", (20,), 3), seed=4)
    assert torch.equal(before, after)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_image_model_on_table_is_a_config_error():
    with pytest.raises(ConfigError, match="needs image inputs"):
        build_model(ModelSpec("cnn", (600,), 10), 0)


def test_save_load_roundtrip_is_exact(tmp_path):
    spec = ModelSpec("cnn", (1, 28, 28), 10, width=0.25)
    model = build_model(spec, 1).eval()
    path = save_model(model, spec, tmp_path / "m.safetensors")
    back = load_model(path)
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(model(x), back(x))
    assert b"pickle" not in path.read_bytes()[:200]
