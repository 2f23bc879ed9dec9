"""Model zoo: the paper's target architectures, each with a width multiplier and a norm option.

``norm``: ``batch`` (BatchNorm), ``group`` (GroupNorm; DP-SGD cannot use BatchNorm), ``none``, or
``auto`` (BatchNorm for convolutional nets, none for the MLP). Every model returns raw logits.

Text models (``fasttext``, ``textcnn``) take rows of token ids (stored as float32 like every input; an id
outside ``[0, vocab_size)`` reads as the unknown token) and start with an embedding table of
``ModelSpec.vocab_size`` rows, which holds most of their parameters and is sparsified like a Linear weight.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from .errors import ConfigError
from .registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model (saved in checkpoints' metadata)."""

    name: str
    input_shape: tuple[int, ...]
    n_classes: int
    width: float = 1.0
    norm: str = "auto"
    vocab_size: int = 0  # text models: rows of the embedding table (0 = not a text model)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        if not self.vocab_size:
            del d["vocab_size"]  # files of non-text models stay as they were
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        return cls(
            d["name"],
            tuple(int(s) for s in d["input_shape"]),
            int(d["n_classes"]),
            float(d["width"]),
            d["norm"],
            int(d.get("vocab_size", 0)),
        )


@dataclass(frozen=True)
class ModelEntry:
    builder: Callable[[ModelSpec], nn.Module]
    kinds: tuple[str, ...]  # which dataset kinds it accepts: "image", "tabular", "text"
    description: str


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(name: str, kinds: tuple[str, ...], description: str):
    def decorator(fn: Callable[[ModelSpec], nn.Module]):
        MODELS.register(name)(ModelEntry(fn, kinds, description))
        return fn

    return decorator


def _ch(base: int, width: float) -> int:
    return max(1, int(round(base * width)))


def _norm2d(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(32, channels), channels)
    return nn.Identity()


def _norm1d(kind: str, features: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(features)
    if kind == "group":
        return nn.GroupNorm(math.gcd(32, features), features)
    return nn.Identity()


def _need_image(spec: ModelSpec) -> tuple[int, int, int]:
    if len(spec.input_shape) != 3:
        raise ConfigError(
            f"model {spec.name!r} needs image inputs (C x H x W) but the data has per-sample shape {spec.input_shape}; "
            "use model.name=mlp for tables"
        )
    return spec.input_shape  # type: ignore[return-value]


@register_model("mlp", ("tabular", "image"), "Purchase/Texas MLP: hidden 1024-512-256-128, Tanh")
def _mlp(spec: ModelSpec) -> nn.Module:
    norm = "none" if spec.norm == "auto" else spec.norm
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = math.prod(spec.input_shape)
    for base in (1024, 512, 256, 128):
        h = _ch(base, spec.width)
        layers += [nn.Linear(fan_in, h), _norm1d(norm, h), nn.Tanh()]
        fan_in = h
    layers.append(nn.Linear(fan_in, spec.n_classes))
    return nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])


@register_model("cnn", ("image",), "small CNN: 3 conv blocks (32-64-128) + linear; fast on CPU")
def _cnn(spec: ModelSpec) -> nn.Module:
    c, _, _ = _need_image(spec)
    norm = "batch" if spec.norm == "auto" else spec.norm
    widths = [_ch(b, spec.width) for b in (32, 64, 128)]
    layers: list[nn.Module] = []
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=norm == "none"), _norm2d(norm, w), nn.ReLU(inplace=True)]
        layers.append(nn.MaxPool2d(2) if i < len(widths) - 1 else nn.AdaptiveAvgPool2d(1))
        c = w
    layers += [nn.Flatten(), nn.Linear(c, spec.n_classes)]
    return nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])


# VGG-C (the SNIP paper's VGG16 variant used by SafeCompress): "M" = max-pool, (w, 1) = 1x1 conv with padding 1.
_VGG_C = [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M", 512, 512, (512, 1), "M"]


class _VGG(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        c, h, w = _need_image(spec)
        norm = "batch" if spec.norm == "auto" else spec.norm
        layers: list[nn.Module] = []
        for item in _VGG_C:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            base, k = item if isinstance(item, tuple) else (item, 3)
            out = _ch(base, spec.width)
            layers += [nn.Conv2d(c, out, k, padding=1), _norm2d(norm, out), nn.ReLU(inplace=True)]
            c = out
        self.features = nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *spec.input_shape)).numel()
        hidden = _ch(512, spec.width)
        head: list[nn.Module] = [
            nn.Linear(flat, hidden),
            nn.ReLU(inplace=True),
            _norm1d(norm, hidden),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            _norm1d(norm, hidden),
            nn.Linear(hidden, spec.n_classes),
        ]
        self.classifier = nn.Sequential(*[m for m in head if not isinstance(m, nn.Identity)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


@register_model("vgg-c", ("image",), "VGG16-C (SNIP/SafeCompress): 13 conv incl. three 1x1, BN, 2 FC")
def _vgg_c(spec: ModelSpec) -> nn.Module:
    return _VGG(spec)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.n1 = _norm2d(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.n2 = _norm2d(norm, cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm2d(norm, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.n1(self.conv1(x)))
        out = self.n2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class _ResNet18(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        c, _, _ = _need_image(spec)
        norm = "batch" if spec.norm == "auto" else spec.norm
        w = [_ch(b, spec.width) for b in (64, 128, 256, 512)]
        self.stem = nn.Sequential(nn.Conv2d(c, w[0], 3, 1, 1, bias=False), _norm2d(norm, w[0]), nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        cin = w[0]
        for i, cout in enumerate(w):
            for j in range(2):
                blocks.append(_BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1, norm))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, spec.n_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


@register_model("resnet18", ("image",), "ResNet-18 with the CIFAR stem (3x3 conv, no max-pool)")
def _resnet18(spec: ModelSpec) -> nn.Module:
    return _ResNet18(spec)


def _need_text(spec: ModelSpec) -> tuple[int, int]:
    if len(spec.input_shape) != 1 or spec.vocab_size < 3:
        raise ConfigError(
            f"model {spec.name!r} needs token-id rows and a vocabulary (a text dataset such as spam-assassin), but the "
            f"data has per-sample shape {spec.input_shape} and vocab_size {spec.vocab_size}; use mlp or cnn for "
            "tables and images"
        )
    return spec.input_shape[0], spec.vocab_size


class _TokenIds(nn.Module):
    """Float token ids -> int64 ids; anything outside [0, vocab_size) (e.g. a perturbed query) -> the unknown id."""

    def __init__(self, vocab_size: int, unk: int = 1):
        super().__init__()
        self.vocab_size, self.unk = vocab_size, unk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x.round().long()
        return torch.where((ids >= 0) & (ids < self.vocab_size), ids, torch.full_like(ids, self.unk))


def _embedding_init(weight: torch.Tensor) -> None:
    """Small random rows (std 0.01): a token's row is updated only in the batches that hold it, so with Adam at the
    cpu recipe's lr (1e-3) rows drawn at std dim^-1/2 barely moved, and the mean over 256 mostly-pruned rows stayed
    noise (the fasttext model sat at the majority class for 10 epochs on spam-assassin; with these rows and batch
    norm in the head (norm: auto) it reached 0.949 test accuracy in 10 epochs)."""
    with torch.no_grad():
        nn.init.normal_(weight, std=0.01)
        weight[0].zero_()  # the padding id


class _FastText(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        _, vocab = _need_text(spec)
        dim, hidden = _ch(64, spec.width), _ch(64, spec.width)
        norm = "batch" if spec.norm == "auto" else spec.norm
        self.ids = _TokenIds(vocab)
        self.embed = nn.EmbeddingBag(vocab, dim, mode="mean", padding_idx=0)
        _embedding_init(self.embed.weight)
        layers = [nn.Linear(dim, hidden), _norm1d(norm, hidden), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(hidden, spec.n_classes))
        self.head = nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(self.ids(x)))


@register_model("fasttext", ("text",), "fastText-style: mean of token embeddings (64) + MLP (64); fast on CPU")
def _fasttext(spec: ModelSpec) -> nn.Module:
    return _FastText(spec)


class _TextCNN(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        _, vocab = _need_text(spec)
        dim, ch = _ch(64, spec.width), _ch(128, spec.width)
        norm = "batch" if spec.norm == "auto" else spec.norm
        self.ids = _TokenIds(vocab)
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        _embedding_init(self.embed.weight)
        layers: list[nn.Module] = []
        c = dim
        for _ in range(2):
            layers += [nn.Conv1d(c, ch, 5, padding=2), _norm1d(norm, ch), nn.ReLU(inplace=True)]
            c = ch
        self.convs = nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])
        self.fc = nn.Linear(ch, spec.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(self.embed(self.ids(x)).transpose(1, 2))  # (batch, channels, tokens)
        return self.fc(h.amax(dim=2))


@register_model("textcnn", ("text",), "1-D CNN over token embeddings (64): 2 conv (128, k=5), max over time + linear")
def _textcnn(spec: ModelSpec) -> nn.Module:
    return _TextCNN(spec)


def model_entry(name: str) -> ModelEntry:
    """A registered model, or a user factory named by import path ``"package.module:function"``.

    A factory is called as ``function(input_shape=..., n_classes=..., width=...)`` and returns an
    ``nn.Module`` made of Linear/Conv/Embedding layers (those are what gets sparsified); on text data it is
    also given ``vocab_size=``."""
    if ":" not in name:
        return MODELS.get(name)
    module_name, _, attr = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # noqa: BLE001  (ImportError, or any error raised while importing the user's module)
        raise ConfigError(
            f"model.name={name!r}: cannot import the factory ({exc}); use 'package.module:function' "
            "with the package on PYTHONPATH"
        ) from None
    if not callable(factory):
        raise ConfigError(f"model.name={name!r} is not callable")

    def build(spec: ModelSpec) -> nn.Module:
        try:
            kwargs = {"vocab_size": spec.vocab_size} if spec.vocab_size else {}
            model = factory(input_shape=spec.input_shape, n_classes=spec.n_classes, width=spec.width, **kwargs)
        except Exception as exc:  # noqa: BLE001  (the user's code: any failure is theirs to fix)
            raise ConfigError(
                f"model.name={name!r}: the factory raised {type(exc).__name__}: {exc}; it is called as "
                f"{attr}(input_shape=..., n_classes=..., width=...)"
            ) from None
        if not isinstance(model, nn.Module):
            raise ConfigError(
                f"model.name={name!r}: the factory returned {type(model).__name__}, not a torch nn.Module"
            )
        return model

    return ModelEntry(build, ("image", "tabular", "text"), f"user factory {name}")


def build_model(spec: ModelSpec, seed: int) -> nn.Module:
    """Build a model with a seeded initialisation (the global RNG is left untouched)."""
    entry = model_entry(spec.name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return entry.builder(spec)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
