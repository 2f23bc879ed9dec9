import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test session shares one private dataset cache (never the user's ~/.cache)."""
    cache = tmp_path_factory.getbasetemp() / "safecompress-cache"
    monkeypatch.setenv("SAFECOMPRESS_CACHE", str(cache))
    monkeypatch.delenv("SAFECOMPRESS_DATA", raising=False)
    yield


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tests use tiny models: one intra-op thread is as fast and immune to a loaded machine."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def kill_at_epoch(monkeypatch):
    """``with kill_at_epoch(2): ...`` makes training raise KeyboardInterrupt after that epoch (a killed run)."""
    import contextlib

    from safecompress.train import Callback, Trainer

    original = Trainer.fit

    @contextlib.contextmanager
    def patch(epoch: int):
        def fit_then_die(self, X, y):
            class Kill(Callback):
                def on_epoch_end(self, trainer, metrics):
                    if trainer.state.epoch == epoch:
                        raise KeyboardInterrupt

            self.callbacks.append(Kill())
            return original(self, X, y)

        monkeypatch.setattr(Trainer, "fit", fit_then_die)
        try:
            yield
        finally:
            monkeypatch.setattr(Trainer, "fit", original)

    return patch
