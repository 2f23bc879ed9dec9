import math

import pytest
import torch

from safecompress.config import TrainConfig
from safecompress.errors import ConfigError, TrainingDivergedError
from safecompress.models import ModelSpec, build_model
from safecompress.train import Callback, Trainer, augment_images, evaluate, lr_factor, resolve_device


def _blobs(n=400, d=10, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=g) * 3
    y = torch.randint(0, k, (n,), generator=g)
    return centers[y] + torch.randn(n, d, generator=g), y


def _train(seed, epochs=5, **kw):
    X, y = _blobs()
    cfg = TrainConfig(epochs=epochs, batch_size=32, optimizer="sgd", lr=0.05, **kw)
    model = build_model(ModelSpec("mlp", (10,), 3, width=0.1), seed)
    trainer = Trainer(model, cfg, seed=seed, device=torch.device("cpu"))
    trainer.fit(X, y)
    return model, trainer, X, y


def test_training_learns_and_is_deterministic():
    m1, _, X, y = _train(0)
    m2, _, _, _ = _train(0)
    m3, _, _, _ = _train(1)
    assert evaluate(m1, X, y, torch.device("cpu"))["accuracy"] > 0.9
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(m1.parameters(), m3.parameters()))


def test_lr_schedules():
    step = TrainConfig(schedule="step", milestones=[0.5, 0.75], gamma=0.1)
    assert [lr_factor(step, s, 100) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    cos = TrainConfig(schedule="cosine")
    assert lr_factor(cos, 0, 100) == 1.0 and lr_factor(cos, 50, 100) == pytest.approx(0.5)
    assert lr_factor(cos, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(TrainConfig(schedule="constant"), 70, 100) == 1.0


def test_callbacks_see_every_step_and_epoch():
    seen = {"steps": 0, "epochs": 0, "start": 0, "end": 0}

    class Count(Callback):
        def on_fit_start(self, t):
            seen["start"] += 1

        def on_step_end(self, t):
            seen["steps"] += 1

        def on_epoch_end(self, t, m):
            seen["epochs"] += 1

        def on_fit_end(self, t):
            seen["end"] += 1

    X, y = _blobs(n=100)
    model = build_model(ModelSpec("mlp", (10,), 3, width=0.1), 0)
    Trainer(model, TrainConfig(epochs=3, batch_size=32), seed=0, device=torch.device("cpu"), callbacks=[Count()]).fit(
        X, y
    )
    assert seen == {"steps": 3 * math.ceil(100 / 32), "epochs": 3, "start": 1, "end": 1}


def test_state_roundtrip_resumes_identically():
    """Train 4 epochs straight vs 2 epochs, save state, restore into a fresh trainer, 2 more."""
    straight, _, X, y = _train(0, epochs=4)
    first = build_model(ModelSpec("mlp", (10,), 3, width=0.1), 0)
    cfg = TrainConfig(epochs=4, batch_size=32, optimizer="sgd", lr=0.05)
    t1 = Trainer(first, cfg, seed=0, device=torch.device("cpu"), epochs=4)

    class StopAfter2(Callback):
        def on_epoch_end(self, t, m):
            if t.state.epoch == 2:
                raise KeyboardInterrupt

    t1.callbacks.append(StopAfter2())
    with pytest.raises(KeyboardInterrupt):
        t1.fit(X, y)
    tensors, meta = t1.state_tensors()
    second = build_model(ModelSpec("mlp", (10,), 3, width=0.1), 99)  # different init: must be overwritten
    t2 = Trainer(second, cfg, seed=0, device=torch.device("cpu"))
    t2.load_state_tensors(tensors, meta)
    t2.fit(X, y)
    assert all(torch.equal(p, q) for p, q in zip(straight.parameters(), second.parameters()))


def test_augmentation_crops_and_flips_only():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = augment_images(x, g, pad=0)
    for i in range(2):  # with no padding only flips remain
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))
    out = augment_images(x, torch.Generator().manual_seed(1), pad=2)
    assert out.shape == x.shape
    again = augment_images(x, torch.Generator().manual_seed(1), pad=2)
    assert torch.equal(out, again)


def test_device_resolution():
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_divergence_is_reported():
    X, y = _blobs()
    X[0, 0] = float("nan")
    model = build_model(ModelSpec("mlp", (10,), 3, width=0.1), 0)
    with pytest.raises(TrainingDivergedError, match="lower train.lr"):
        Trainer(model, TrainConfig(epochs=1, batch_size=400), seed=0, device=torch.device("cpu")).fit(X, y)


def test_min_steps_raises_the_epochs_of_small_datasets_only():
    from safecompress.config import TrainConfig
    from safecompress.train import epochs_for

    cfg = TrainConfig(epochs=10, batch_size=100, min_steps=1000)
    assert epochs_for(cfg, 1000) == 100  # 10 steps per epoch: 100 epochs reach 1000 steps
    assert epochs_for(cfg, 50_000) == 10  # 500 steps per epoch: the configured epochs already suffice
    assert epochs_for(TrainConfig(epochs=10, batch_size=100), 1000) == 10  # off by default


def test_a_lone_last_sample_joins_the_previous_batch():
    from safecompress.train import batch_bounds

    assert batch_bounds(257, 128) == [(0, 128), (128, 257)]
    assert batch_bounds(256, 128) == [(0, 128), (128, 256)]
    assert batch_bounds(1, 128) == [(0, 1)]


def test_skipped_batches_keep_the_step_budget_and_the_schedule():
    """Steps spent elsewhere (SafeCompress's chosen fine-tuning) are skipped: the step counter still advances,
    so the LR schedule and the update steps keep their places, and trained + skipped steps = the budget."""
    trained, lrs = [], {}

    class SkipAt(Callback):
        def on_step_end(self, t):
            trained.append(t.state.step)
            lrs[t.state.step] = t.optimizer.param_groups[0]["lr"]
            if t.state.step in (2, 8):
                t.skip({2: 3, 8: 2}[t.state.step])

    X, y = _blobs(n=100)  # 4 batches per epoch, 12 steps in 3 epochs
    cfg = TrainConfig(epochs=3, batch_size=32, schedule="cosine", lr=0.1)
    model = build_model(ModelSpec("mlp", (10,), 3, width=0.1), 0)
    t = Trainer(model, cfg, seed=0, device=torch.device("cpu"), callbacks=[SkipAt()])
    state = t.fit(X, y)
    assert trained == [1, 2, 6, 7, 8, 11, 12]
    assert state.step == 12 and state.skip == 0 and state.epoch == 3
    for step in trained:  # the learning rate of a step is the schedule's at that step, skipped or not
        assert lrs[step] == pytest.approx(0.1 * lr_factor(cfg, step - 1, 12))
    assert all(math.isfinite(h["loss"]) for h in state.history)
    with pytest.raises(ValueError, match="skip"):
        t.skip(-1)


def test_a_pending_skip_survives_a_checkpoint():
    """A run interrupted while skipping resumes with the same number of batches still to skip."""
    X, y = _blobs(n=100)
    cfg = TrainConfig(epochs=3, batch_size=32)

    class SkipThenStop(Callback):
        def on_step_end(self, t):
            if t.state.step == 3:
                t.skip(3)  # steps 4-6: the last batch of epoch 1 and two of epoch 2

        def on_epoch_end(self, t, m):
            if t.state.epoch == 1:
                raise KeyboardInterrupt

    t1 = Trainer(build_model(ModelSpec("mlp", (10,), 3, width=0.1), 0), cfg, seed=0, device=torch.device("cpu"))
    t1.callbacks.append(SkipThenStop())
    with pytest.raises(KeyboardInterrupt):
        t1.fit(X, y)
    tensors, meta = t1.state_tensors()
    assert meta["skip"] == 2 and meta["step"] == 4
    t2 = Trainer(build_model(ModelSpec("mlp", (10,), 3, width=0.1), 1), cfg, seed=0, device=torch.device("cpu"))
    t2.load_state_tensors(tensors, meta)
    assert t2.state.skip == 2
    trained = []

    class Count(Callback):
        def on_step_end(self, t):
            trained.append(t.state.step)

    t2.callbacks.append(Count())
    t2.fit(X, y)
    assert trained == [7, 8, 9, 10, 11, 12] and t2.state.skip == 0


def test_the_run_history_survives_a_resume_with_no_epoch_left(tmp_path):
    """A run killed after its last epoch (during evaluation or the audit) resumes without training: report.json's
    history is still every epoch, restored from the checkpoint."""
    from types import SimpleNamespace

    from safecompress.runner import _Checkpointer

    restored = [
        {"epoch": 1, "loss": 0.9, "train_accuracy_running": 0.5},
        {"epoch": 2, "loss": 0.7, "train_accuracy_running": 0.6},
    ]
    trainer = SimpleNamespace(state=SimpleNamespace(history=restored))
    checkpointer = _Checkpointer(tmp_path / "checkpoint.safetensors")
    checkpointer.on_fit_end(trainer)  # the resumed fit runs no epoch, so on_epoch_end never comes
    assert checkpointer.history == restored and checkpointer.history[0] is not restored[0]
