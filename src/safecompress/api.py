"""A small facade for users who arrive with their own ``nn.Module`` and data (in the spirit of Opacus), following
scikit-learn's estimator conventions (without depending on scikit-learn):

    from safecompress import SafeCompress
    sc = SafeCompress(density=0.05, simulate=["nn"], epochs=30)
    sc.fit(model, train=(X, y), val=(Xv, yv), probe=(member_indices, (Xn, yn)))   # returns sc
    sc.model_      # the compressed model (a new module; ``model`` is untouched)
    sc.history_    # one dict per round: every candidate's accuracy, attack scores, score, choice
    sc.masks_      # the final masks (parameter name -> bool tensor)
    sc.save_pretrained("folder", factory="mypkg.nets:make", factory_kwargs={...})
    SafeCompress.from_pretrained("folder").model_

Parameters live in ``__init__`` only and are stored as given: ``get_params`` / ``set_params`` / ``repr`` and
``sklearn.base.clone`` work on them, and ``fit`` validates them. Any config key can be set too, with ``__`` for
its dots (``safecompress__privacy_weight=2``). Any model made of Linear/Conv layers works; it is trained from its
current weights with the test-driven loop and comes back sparse (masks applied). Data may be (X, y) pairs, torch
Datasets or DataLoaders (read into memory: see :mod:`~safecompress.userdata`); ``probe`` members are training
samples, given by their indices in ``train`` or as samples of it.
"""

from __future__ import annotations

import copy
import inspect
import json
import tempfile
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from .config import RunConfig, build_config
from .defences import build_defence
from .errors import ConfigError, SafeCompressError
from .methods import METHODS, MethodContext, needed_parts
from .models import ModelSpec
from .train import resolve_device
from .userdata import gather


class SafeCompress:
    def __init__(
        self,
        density: float = 0.05,
        simulate: Sequence[str] = ("nn",),
        *,
        method: str = "safecompress",
        epochs: int = 30,
        batch_size: int = 128,
        optimizer: str = "adam",
        lr: float = 1e-3,
        update_every: int = 100,
        seed: int = 0,
        device: str = "auto",
        augment: bool = False,
        **overrides: Any,
    ):
        """``overrides`` are config keys with ``__`` for dots, e.g. ``safecompress__privacy_weight=2``; they win
        over the named parameters. Nothing is checked here: ``fit`` validates everything at once."""
        self.density, self.simulate, self.method, self.epochs = density, simulate, method, epochs
        self.batch_size, self.optimizer, self.lr, self.update_every = batch_size, optimizer, lr, update_every
        self.seed, self.device, self.augment = seed, device, augment
        self._overrides = overrides

    # -- scikit-learn's parameter protocol ---------------------------------------------------------------------

    @classmethod
    def _defaults(cls) -> dict[str, Any]:
        """The named parameters of ``__init__`` and their defaults."""
        return {
            name: p.default
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
        }

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters as given (named ones, then config overrides); ``deep`` is accepted for scikit-learn (no
        parameter is itself an estimator)."""
        return {**{name: getattr(self, name) for name in self._defaults()}, **self._overrides}

    def set_params(self, **params: Any) -> "SafeCompress":
        """Set parameters (named ones, or config keys with ``__`` for dots); returns ``self``. Values are
        validated by ``fit``; an unknown name is a ValueError here."""
        named = self._defaults()
        problem = _unknown_parameters(params, named)
        if problem:
            raise ValueError(problem)
        for key, value in params.items():
            if key in named:
                setattr(self, key, value)
            else:
                self._overrides[key] = value
        return self

    def __repr__(self) -> str:
        defaults = self._defaults()
        shown = [f"{k}={v!r}" for k, v in self.get_params().items() if k not in defaults or not _same(v, defaults[k])]
        return f"{type(self).__name__}({', '.join(shown)})"

    def _config(self) -> RunConfig:
        """The run configuration of the parameters; ConfigError lists every invalid one."""
        problem = _unknown_parameters(self._overrides, self._defaults())  # the constructor stores them as given
        if problem:
            raise ConfigError(problem)
        simulate = [self.simulate] if isinstance(self.simulate, str) else list(self.simulate)
        raw: dict[str, Any] = {
            "seed": self.seed,
            "method": {"name": self.method},
            "sparse": {"density": self.density, "update_every": self.update_every},
            "safecompress": {"simulate": simulate},
            "train": {
                "epochs": self.epochs,
                "batch_size": self.batch_size,
                "optimizer": self.optimizer,
                "lr": self.lr,
                "weight_decay": 0.0 if self.optimizer == "adam" else 5e-4,
                "device": self.device,
                "augment": self.augment,
            },
            "audit": {"enabled": False},
        }
        for key, value in self._overrides.items():
            node = raw
            parts = key.split("__")
            for i, part in enumerate(parts[:-1]):
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigError(
                        f"SafeCompress parameter {key!r}: {'__'.join(parts[: i + 1])} is a single value, not a "
                        f"section with keys; set {'__'.join(parts[: i + 1])}=... itself"
                    )
            node[parts[-1]] = value
        return build_config(raw)

    # -- fitting -----------------------------------------------------------------------------------------------

    def fit(self, model: nn.Module, train, val, probe=None, n_classes: int | None = None) -> "SafeCompress":
        """Compress ``model`` (left untouched); returns ``self`` with the compressed model in ``model_``.

        ``train``, ``val``: (X, y) pairs, Datasets of (x, y) or DataLoaders. ``probe``: (members, non-members),
        members as indices into ``train`` or samples of it, non-members in any of the data forms; needed by the
        methods that simulate attacks (safecompress). ``n_classes``: default the largest label + 1."""
        cfg = self._config()
        if not isinstance(model, nn.Module):
            raise ConfigError(f"fit needs a torch nn.Module as its model, got {type(model).__name__}")
        if probe is None and set(needed_parts(cfg)) & {"probe_members", "probe_nonmembers"}:
            raise ConfigError(
                f"method {cfg.method.name!r} needs probe=(members, non-members): members from the training set "
                "(indices into train, or (X, y) samples of it) and non-members it never trains on"
            )
        data = gather(train, val, probe, n_classes)
        input_shape = tuple(data.X.shape[1:])
        with tempfile.TemporaryDirectory() as tmp:
            ctx = _UserContext(
                cfg=cfg,
                spec=ModelSpec("user", input_shape, data.n_classes, 1.0, "auto"),
                X=data.X,
                y=data.y,
                split=data.split,
                device=resolve_device(cfg.train.device),
                augment=bool(cfg.train.augment is True),
                flip=True,
                run_dir=Path(tmp),
                defence=build_defence(cfg),
            )
            ctx.template = model
            result = METHODS.get(cfg.method.name)().train(ctx)
            rounds = Path(tmp) / "rounds.jsonl"
            history = [json.loads(line) for line in rounds.read_text().splitlines()] if rounds.exists() else []
        self.cfg_ = cfg
        self.factory_ = None  # how to rebuild model_'s architecture, known once from_pretrained loaded it
        self.model_ = result.model.eval()
        self.masks_ = result.masks
        self.history_ = history
        self.report_ = result.report
        self.input_shape_ = input_shape
        self.n_classes_ = data.n_classes
        return self

    # -- saving ------------------------------------------------------------------------------------------------

    def save_pretrained(
        self, folder, factory=None, factory_kwargs: dict[str, Any] | None = None, *, overwrite: bool = False
    ):
        """Write the fitted estimator to ``folder`` (no pickle; see :mod:`~safecompress.pretrained`); returns the
        folder's path.

        ``factory`` rebuilds the architecture on load: a zoo model name (``factory_kwargs`` among width, norm,
        vocab_size) or a module-level function or class, given itself or as ``"package.module:function"``, that
        ``factory(**factory_kwargs)`` turns into the model given to ``fit`` (JSON values only). It is checked now
        (it must build the same weights), and may be left out for an estimator that ``from_pretrained`` loaded. A
        non-empty folder is refused unless ``overwrite`` (which replaces only this format's two files)."""
        from .pretrained import Factory, Pretrained, save

        fitted = self._fitted("save_pretrained")
        if factory is not None:
            record = Factory.of(factory, factory_kwargs)
        elif getattr(self, "factory_", None) is not None and factory_kwargs is None:
            record = self.factory_
        else:
            raise ConfigError(
                "save_pretrained needs factory= to record how to rebuild your model without pickle: a module-level "
                "function or class (or 'package.module:function') that factory(**factory_kwargs) turns into the "
                "model given to fit, or a zoo model name such as 'mlp'"
            )
        return save(
            folder,
            Pretrained(
                model=fitted,
                masks=self.masks_ or {},
                params=self.get_params(),
                factory=record,
                input_shape=self.input_shape_,
                n_classes=self.n_classes_,
                history=self.history_,
                report=self.report_,
            ),
            overwrite=overwrite,
        )

    @classmethod
    def from_pretrained(cls, folder, *, device: str = "cpu", trust_code: bool = False) -> "SafeCompress":
        """The fitted estimator saved in ``folder`` by :meth:`save_pretrained`, its model on ``device``.

        A folder naming a user factory ("package.module:function") imports and runs it: refused unless
        ``trust_code`` or this process already trusts that factory (it saved the folder)."""
        from .pretrained import load

        loaded = load(folder, device, trust_code)
        try:
            est = cls().set_params(**loaded.params)
            est.cfg_ = est._config()
        except (ValueError, ConfigError) as exc:
            raise SafeCompressError(
                f"{folder}: the saved parameters are invalid ({exc}); the folder is corrupt"
            ) from None
        est.model_ = loaded.model
        est.masks_ = loaded.masks or None
        est.history_ = loaded.history
        est.report_ = loaded.report
        est.input_shape_ = loaded.input_shape
        est.n_classes_ = loaded.n_classes
        est.factory_ = loaded.factory
        return est

    def _fitted(self, what: str) -> nn.Module:
        model = getattr(self, "model_", None)
        if model is None:
            raise SafeCompressError(f"this SafeCompress is not fitted yet: call fit before {what}")
        return model


def _unknown_parameters(params: dict[str, Any], named: dict[str, Any]) -> str:
    """What is wrong with the names of ``params`` (empty when each is a named parameter or a config key)."""
    unknown = [k for k in params if k not in named and k.split("__")[0] not in RunConfig.model_fields]
    if not unknown:
        return ""
    return (
        f"SafeCompress has no parameter {', '.join(map(repr, unknown))}; valid: {', '.join(named)}, or a config key "
        f"with __ for dots (e.g. safecompress__privacy_weight) in {', '.join(RunConfig.model_fields)}"
    )


def _same(a: Any, b: Any) -> bool:
    """Whether a parameter equals its default (a list and a tuple of the same items do)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        a, b = list(a), list(b)
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001  (a value whose == is not a truth value, e.g. an array)
        return False


class _UserContext(MethodContext):
    template: nn.Module

    def new_model(self) -> nn.Module:
        return copy.deepcopy(self.template)
