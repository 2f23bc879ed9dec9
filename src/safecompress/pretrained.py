"""A fitted :class:`~safecompress.api.SafeCompress` in a folder, and back, without pickle.

The folder holds two files:

* ``model.safetensors``: the compressed model in the project's model format (sparse weights packed with
  their masks, the architecture's description in the metadata; see :mod:`~safecompress.checkpoint`);
* ``config.json``: the estimator's parameters; how to rebuild the architecture (``factory``: a zoo model name,
  or ``"package.module:function"`` and the keyword arguments it is called with); the fit's history and method
  report; and the model file's SHA-256, so a folder whose two files come from different saves is refused.

Loading runs no code the caller has not trusted: a zoo model is built from its description; a user factory is
imported and called only with ``trust_code=True``, or when this process already trusts it (it saved the
folder, or a config the user gave named it), as for any model file (:mod:`~safecompress.checkpoint`).
"""

from __future__ import annotations

import json
import logging
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import __version__
from .checkpoint import (
    FACTORY_KWARGS,
    call_factory,
    check_model_name,
    model_bytes,
    read_model,
    state_differences,
    trust_model_factory,
)
from .errors import ConfigError, RunFolderError, SafeCompressError
from .fileio import atomic_write_many, json_bytes, read_limited, sha256_bytes, sha256_file
from .models import MODELS, ModelSpec, build_model

log = logging.getLogger(__name__)

FORMAT = "safecompress-pretrained-v1"
CONFIG = "config.json"
MODEL = "model.safetensors"
_MAX_CONFIG = 64 << 20  # bytes; the history of a long fit is the bulk of it
_ZOO_KWARGS = ("width", "norm", "vocab_size")  # a zoo model's ModelSpec fields besides the data's shape


@dataclass(frozen=True)
class Factory:
    """How to rebuild the architecture: a zoo model (``name`` as in ``safecompress list models``; ``kwargs`` among
    width, norm, vocab_size) or a user factory ``"package.module:function"`` called as ``function(**kwargs)``."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_zoo(self) -> bool:
        return ":" not in self.name

    @classmethod
    def of(cls, factory: Any, kwargs: dict[str, Any] | None) -> "Factory":
        """The record of a factory the user gives: a zoo name, an import path, or a module-level function or class."""
        if isinstance(factory, str):
            name = factory
        elif callable(factory):
            name = f"{getattr(factory, '__module__', None)}:{getattr(factory, '__qualname__', '')}"
            if "<" in name or _resolve(name, quiet=True) is not factory:
                raise ConfigError(
                    f"the factory {factory!r} cannot be imported by name (as {name!r}): define it at the top level "
                    "of a module and pass it, or its path 'package.module:function'"
                )
        else:
            raise ConfigError(
                f"factory must be a zoo model name, 'package.module:function' or a function; got {factory!r}"
            )
        if name.startswith("__main__:"):
            log.warning("the factory %s lives in the running script: the folder reloads only where it runs", name)
        if ":" not in name and name not in MODELS:
            raise ConfigError(
                f"factory {name!r} is neither a zoo model ({', '.join(MODELS.names())}) nor 'package.module:function'"
            )
        try:  # what load will pass: JSON values (a tuple comes back as a list)
            kwargs = json.loads(json.dumps(dict(kwargs or {})))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"factory_kwargs must be JSON values (numbers, strings, lists, dicts): {exc}") from None
        unknown = sorted(set(kwargs) - set(_ZOO_KWARGS)) if ":" not in name else []
        if unknown:
            raise ConfigError(
                f"the zoo model {name!r} takes factory_kwargs among {', '.join(_ZOO_KWARGS)}, not {', '.join(unknown)}"
            )
        return cls(name, kwargs)

    def spec(self, input_shape: tuple[int, ...], n_classes: int) -> ModelSpec:
        """The model file's description: the zoo model's own, or the user factory's name and the data's shape."""
        return ModelSpec(self.name, tuple(input_shape), n_classes, **(self.kwargs if self.is_zoo else {}))

    def builder(self) -> Callable[[ModelSpec], nn.Module]:
        return (lambda spec: build_model(spec, seed=0)) if self.is_zoo else (lambda spec: self._call())

    def _call(self) -> nn.Module:
        return call_factory(_resolve(self.name), self.name, self.kwargs, ConfigError)


def _resolve(name: str, quiet: bool = False) -> Any:
    try:
        return pkgutil.resolve_name(name)
    except Exception as exc:  # noqa: BLE001  (ImportError, or whatever the user's module raises on import)
        if quiet:
            return None
        raise ConfigError(
            f"cannot import the factory {name!r} ({exc}); use 'package.module:function' with the package importable"
        ) from None


@dataclass
class Pretrained:
    """What a folder holds: the fitted model and masks, the estimator's parameters and the fit's records."""

    model: nn.Module
    masks: dict[str, torch.Tensor]
    params: dict[str, Any]
    factory: Factory
    input_shape: tuple[int, ...]
    n_classes: int
    history: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


def save(folder: str | Path, fitted: Pretrained, overwrite: bool = False) -> Path:
    """Write ``fitted`` into ``folder``. An existing folder that is not empty is refused unless ``overwrite``;
    even then only the two files of this format are replaced (both written first, then renamed into place,
    the config last) and other files are kept."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{folder} is a file; save_pretrained needs a folder (new or empty)")
    if folder.is_dir() and not overwrite and any(folder.iterdir()):
        raise RunFolderError(
            f"{folder} is not empty; choose a new folder, or pass overwrite=True to replace its {MODEL} and "
            f"{CONFIG} (other files are kept)"
        )
    factory, spec = fitted.factory, fitted.factory.spec(fitted.input_shape, fitted.n_classes)
    _check_rebuilds(factory, spec, fitted.model)
    try:
        record = json.loads(
            json.dumps(
                {
                    "format": FORMAT,
                    "version": __version__,
                    "params": fitted.params,
                    "factory": {"name": factory.name, "kwargs": factory.kwargs},
                    "history": fitted.history,
                    "report": fitted.report,
                }
            )
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the estimator's parameters must be JSON values to be saved: {exc}") from None
    extra = {} if factory.is_zoo else {FACTORY_KWARGS: factory.kwargs}  # so load_model can build it alone
    model = model_bytes(fitted.model, spec, masks=fitted.masks, extra=extra)
    record["model_sha256"] = sha256_bytes(model)
    # both written before either replaces a file, the config (which vouches for the model) last: a failed
    # save leaves the previous one loadable
    atomic_write_many([(folder / MODEL, model), (folder / CONFIG, json_bytes(record))])
    if not factory.is_zoo:
        trust_model_factory(factory.name)  # the user's own code: this process may rebuild it without trust_code
    log.info("saved the fitted SafeCompress to %s (factory %s)", folder, factory.name)
    return folder


def _check_rebuilds(factory: Factory, spec: ModelSpec, model: nn.Module) -> None:
    """Refuse to save a folder that could not be loaded: the factory must build the fitted model's weights (on
    the meta device, as loading first does: no memory)."""
    with torch.device("meta"):
        rebuilt = factory.builder()(spec)
    diff = state_differences(model.state_dict(), rebuilt.state_dict())
    if diff:
        raise ConfigError(
            f"the factory {factory.name} (with {factory.kwargs}) does not build the fitted model: they differ at "
            f"{', '.join(diff[:5])}; pass the factory and factory_kwargs that built the model given to fit"
        )


def load(folder: str | Path, device: str | torch.device = "cpu", trust_code: bool = False) -> Pretrained:
    """Read a folder written by :func:`save` (see the module docstring for what is trusted)."""
    folder = Path(folder)
    if not (folder / CONFIG).is_file():
        raise SafeCompressError(f"{folder} holds no {CONFIG}; give a folder written by save_pretrained")
    try:
        record = json.loads(read_limited(folder / CONFIG, _MAX_CONFIG, "config"))
        digest = sha256_file(folder / MODEL)
    except OSError as exc:
        raise SafeCompressError(
            f"cannot read {folder}: {exc.strerror or exc}; is it a folder written by save_pretrained?"
        ) from None
    except ValueError as exc:
        raise SafeCompressError(f"{folder / CONFIG} is unreadable ({exc}); the folder is corrupt") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise SafeCompressError(f"{folder / CONFIG} is not a SafeCompress save_pretrained config")
    if record.get("model_sha256") != digest:
        raise SafeCompressError(
            f"{folder / MODEL} is not the model {CONFIG} was saved with (an interrupted save, or an edited file); "
            "save the estimator again"
        )
    raw = record.get("factory")
    if not (isinstance(raw, dict) and isinstance(raw.get("name"), str) and isinstance(raw.get("kwargs"), dict)):
        raise SafeCompressError(f"{folder / CONFIG}: its factory entry is corrupt")
    factory = Factory(raw["name"], raw["kwargs"])
    check_model_name(factory.name, str(folder / CONFIG), trust_code)  # before anything imports it
    model, masks, meta = read_model(folder / MODEL, trust_code, factory.builder())
    spec = meta["model"]
    if spec.get("name") != factory.name or not isinstance(record.get("params"), dict):
        raise SafeCompressError(f"{folder}: {CONFIG} does not describe {MODEL}; the folder is corrupt")
    return Pretrained(
        model=model.to(device).eval(),
        masks={k: m.to(device) for k, m in masks.items()},
        params=record["params"],
        factory=factory,
        input_shape=tuple(spec["input_shape"]),
        n_classes=int(spec["n_classes"]),
        history=list(record.get("history") or []),
        report=dict(record.get("report") or {}),
    )
