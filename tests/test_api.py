"""The facade for a user's own model, and model factories by import path."""

import sys

import pytest
import torch
from torch import nn

from safecompress import SafeCompress, load_model
from safecompress.errors import ConfigError


class TinyNet(nn.Module):
    def __init__(self, d=16, k=3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
        self.head = nn.Linear(32, k)

    def forward(self, x):
        return self.head(self.body(x))


def _blobs(n, seed, d=16, k=3):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=torch.Generator().manual_seed(99)) * 2
    y = torch.randint(0, k, (n,), generator=g)
    return centers[y] + torch.randn(n, d, generator=g), y


def test_facade_compresses_a_user_model():
    X, y = _blobs(400, 0)
    Xv, yv = _blobs(200, 1)
    Xn, yn = _blobs(100, 2)
    model = TinyNet()
    before = [p.clone() for p in model.parameters()]
    sc = SafeCompress(density=0.2, simulate=["nn", "loss"], epochs=6, batch_size=32, lr=3e-3, update_every=10)
    assert sc.fit(model, (X, y), (Xv, yv), probe=((X[:100], y[:100]), (Xn, yn))) is sc
    out = sc.model_
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the user's model is untouched
    weights = [m.weight for m in out.modules() if isinstance(m, nn.Linear)]
    density = sum(int((w != 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert density == pytest.approx(0.2, abs=0.01)
    assert (out(Xv).argmax(1) == yv).float().mean() > 0.6
    assert sc.history_ and len(sc.history_[0]["candidates"]) == 4
    assert set(sc.masks_) == {"body.0.weight", "body.2.weight", "head.weight"}


def test_facade_requires_probe_members_from_train():
    X, y = _blobs(100, 0)
    sc = SafeCompress(density=0.5, epochs=1)
    with pytest.raises(ConfigError, match="probe"):
        sc.fit(TinyNet(), (X, y), (X[:10], y[:10]))
    with pytest.raises(ConfigError, match="subset of train"):
        sc.fit(TinyNet(), (X, y), (X[:10], y[:10]), probe=((X[:10] + 1, y[:10]), (X[:10], y[:10])))


def test_model_factory_by_import_path(tmp_path, monkeypatch):
    from safecompress.cli import main

    (tmp_path / "mynets.py").write_text(
        "import math\nfrom torch import nn\n"
        "def make(input_shape, n_classes, width):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), int(32 * width)), nn.ReLU(),\n"
        "                         nn.Linear(int(32 * width), n_classes))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--preset",
                "ci",
                "--set",
                "data.name=digits",
                "--set",
                "model.name=mynets:make",
                "--set",
                "method.name=rigl",
                "--set",
                "audit.enabled=false",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert isinstance(load_model(out / "model.safetensors")[1], nn.Linear)
    assert main(["run", "--preset", "ci", "--set", "model.name=nowhere:make", "--out", str(tmp_path / "x")]) == 2
    sys.modules.pop("mynets", None)
