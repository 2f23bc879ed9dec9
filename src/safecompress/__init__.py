"""safecompress: compress neural networks into sparse models that stay accurate and private."""

from ._version import __version__ as __version__  # re-exported


def load_model(path, device="cpu", trust_code=False):
    """Rebuild a model saved by safecompress (packed sparse or dense safetensors; never pickle).

    A file naming a user model factory ("package.module:function") is refused unless ``trust_code``."""
    from .checkpoint import load_model as _load

    return _load(path, device, trust_code=trust_code)


def sparse_inference(model, **kwargs):
    """A copy of ``model`` whose sparse layers run on compressed (CSR) weights; see sparse.inference."""
    from .sparse.inference import sparse_inference as _convert

    return _convert(model, **kwargs)


def audit(model, members, nonmembers, population, **kwargs):
    """Audit a model with the membership-inference attack suite; see safecompress.audit.audit."""
    from .auditor import audit as _audit

    return _audit(model, members, nonmembers, population, **kwargs)


def __getattr__(name):
    if name == "SafeCompress":
        from .api import SafeCompress

        return SafeCompress
    raise AttributeError(f"module 'safecompress' has no attribute {name!r}")
