
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
