"""The training recipe of a model trained elsewhere (``--recipe CFG``), and the reference models it trains.

A recipe is a ``safecompress run`` config (the YAML ``run --config`` reads): the model factory
(``model.name``: a zoo name or ``"package.module:function"``) and the training settings (``train``,
``method``, ``sparse``, ``defence``, ``quantize``), plus ``audit.refs`` (how many references) and
``audit.attack_params``. Its ``data`` section is not read (the references train on the population given
with the audit), nor its ``seed`` (the audit's seed seeds the references, as a run's seed does) or
``audit.canaries`` (no canary can be planted in a model trained elsewhere).

The references are the run audit's own (:class:`~safecompress.attacks.ReferencePool`, each trained by
:func:`~safecompress.run_audit.reference_trainer` with the recipe's method, density and schedule), with one
difference: the pool holds the population only, never the audited members or non-members, so every
audited record is OUT of every reference (LiRA runs offline). Everything is checked before a reference
trains: the config, that its factory builds a model taking the audit's records, and that the model has the
audited model's number of outputs."""

from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from ..attacks import ReferencePool
from ..config import RunConfig, build_config, load_config
from ..data import ArrayDataset
from ..errors import ConfigError
from ..fileio import sha256_file
from ..methods import METHODS
from ..methods.sparse_base import SparseMethod
from ..models import build_model, count_parameters
from ..run_audit import reference_server, reference_trainer
from ..runsetup import model_spec, resolve_config, wants_augment
from ..train import predict_logits, resolve_device
from .data import Pair, records_kind

log = logging.getLogger(__name__)


@dataclass
class Recipe:
    """A recipe's config, and the file it was read from (None for a config given in Python)."""

    cfg: RunConfig
    file: str | None = None
    sha256: str | None = None

    @property
    def label(self) -> str:
        return f"--recipe {self.file}" if self.file else "the recipe"


def load_recipe(value: Any) -> Recipe:
    """A :class:`Recipe` from a YAML file path, a :class:`~safecompress.config.RunConfig` or a config dict;
    a file that is missing, unreadable or not a valid config is refused with what to fix."""
    if isinstance(value, Recipe):
        return value
    if isinstance(value, RunConfig):
        return Recipe(value)
    if isinstance(value, dict):
        with _blamed("the recipe"):
            return Recipe(build_config(value))
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"--recipe {path} does not exist or is not a file; give the YAML config the model was trained with "
            "(the format `safecompress run --config` reads)"
        )
    with _blamed(f"--recipe {path}"):
        return Recipe(load_config(path), str(path), sha256_file(path))


@contextmanager
def _blamed(label: str) -> Iterator[None]:
    """Every configuration problem raised in the block, prefixed with where it comes from."""
    try:
        yield
    except ConfigError as exc:
        raise ConfigError([f"{label}: {p}" for p in exc.problems]) from None


def _population_dataset(population: Pair, n_classes: int) -> ArrayDataset:
    X, y = population
    return ArrayDataset("population", X.numpy(), y.numpy(), n_classes, records_kind(X), False, "--population")


def _check_model(model: torch.nn.Module, X: torch.Tensor, n_classes: int, recipe: Recipe, name: str) -> None:
    """The recipe's model takes the audit's records and has the audited model's number of outputs."""
    shape = "×".join(map(str, X.shape[1:]))
    try:
        out = predict_logits(model, X[:2], torch.device("cpu"))
    except Exception as exc:  # noqa: BLE001  (whatever the user's factory's layers raise on a bad input)
        raise ConfigError(
            f"{recipe.label}: its model {name!r} rejects the audit's records of shape {shape}: "
            f"{type(exc).__name__}: {str(exc).strip()[:300]}; the factory must build the architecture of the "
            "audited model, taking input_shape"
        ) from None
    if out.dim() != 2 or out.shape[1] != n_classes:
        raise ConfigError(
            f"{recipe.label}: its model {name!r} answers records of shape {shape} with outputs of shape "
            f"{tuple(out.shape[1:])}, but the audited model has {n_classes} output classes; the factory must "
            "build the architecture of the audited model, with n_classes outputs"
        )


@contextmanager
def recipe_references(
    recipe: Recipe,
    population: Pair,
    n_classes: int,
    *,
    refs: int | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    target: torch.nn.Module | None = None,
) -> Iterator[tuple[ReferencePool, dict[str, Any]]]:
    """The pool of ``refs`` (default: the recipe's ``audit.refs``) reference models the recipe trains on
    halves of ``population`` (trained when an attack first needs them), kept on ``device`` (where the
    audited model answers), and what report.json says of them. Raises :class:`ConfigError` before anything
    trains when the recipe cannot build a model for the audit's records and the audited model's outputs."""
    ds = _population_dataset(population, n_classes)
    with _blamed(recipe.label):
        cfg = resolve_config(recipe.cfg, ds)
        spec = model_spec(cfg, ds)
        model = build_model(spec, seed)
        train_device = resolve_device(cfg.train.device)
        augment = wants_augment(cfg, ds)
        if augment and ds.kind != "image":
            raise ConfigError("train.augment=true needs image records (crop+flip); use auto or false for tables")
    _check_model(model, population[0], n_classes, recipe, spec.name)
    n_refs = refs or cfg.audit.refs
    info: dict[str, Any] = {
        "file": recipe.file,
        "sha256": recipe.sha256,
        "model": spec.name,
        "width": spec.width,
        "parameters": count_parameters(model),
        "method": cfg.method.name,
        "method_params": cfg.method.params,
        **({"density": cfg.sparse.density} if issubclass(METHODS.get(cfg.method.name), SparseMethod) else {}),
        "defence": cfg.defence.name,
        "quantize": cfg.quantize,
        "train": cfg.train.model_dump(mode="json"),
        "references": n_refs,
        "trained_on": {"population": len(population[1]), "members": 0, "nonmembers": 0},
    }
    mine = count_parameters(target) if target is not None else 0
    if mine and mine != info["parameters"]:
        info["target_parameters"] = mine
        log.warning(
            "%s builds a model of %d parameters but the audited model has %d: the references may not follow the "
            "audited model's recipe, which LiRA and RMIA assume",
            recipe.label,
            info["parameters"],
            mine,
        )
    with tempfile.TemporaryDirectory(prefix="safecompress-refs-") as scratch:  # methods write here only if asked
        train_fn = reference_trainer(cfg, spec, train_device, augment, ds.hflip, Path(scratch))
        device = torch.device(device)
        pool = ReferencePool(
            train_fn, population[0], population[1], n_refs, seed, device, serve_fn=reference_server(cfg, device)
        )
        log.info(
            "%d reference models with %s (model %s, method %s) on the %d population records",
            n_refs,
            recipe.label,
            spec.name,
            cfg.method.name,
            len(population[1]),
        )
        yield pool, info
