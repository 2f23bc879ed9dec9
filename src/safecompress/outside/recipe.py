"""The training recipe of a model trained elsewhere (``--recipe CFG``), and the reference models it trains.

A recipe is a ``safecompress run`` config (the YAML ``run --config`` reads): the model factory
(``model.name``: a zoo name or ``"package.module:function"``) and the training settings (``train``,
``method``, ``sparse``, ``defence``, ``quantize``), plus ``audit.refs`` (how many references) and
``audit.attack_params``. Of its ``data`` section only ``data.name`` is read, for whether image augmentation
may flip (:func:`recipe_hflip`; the references train on the population given with the audit); not read
either are its ``seed`` (the audit's seed seeds the references, as a run's seed does) and
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
from ..data import DATASETS, ArrayDataset
from ..errors import ConfigError
from ..fileio import sha256_file
from ..methods import METHODS
from ..methods.sparse_base import SparseMethod
from ..models import build_model, count_parameters
from ..run_audit import reference_server, reference_trainer
from ..runsetup import model_spec, resolve_config, wants_augment
from ..train import resolve_device
from .data import Pair, probe_classes, records_kind

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


def recipe_hflip(cfg: RunConfig) -> bool:
    """Whether the references' augmentation may flip images horizontally: only when the recipe names its
    dataset (``data.name`` set in the file, not the default) and that dataset declares flips label-preserving
    (:attr:`~safecompress.data.DatasetSource.hflip`; False for digits). Otherwise never — the safe side: the
    population's records come from a file that says nothing of it, and references trained on mirrored records
    the audited model may never have seen (a mirrored digit) would misjudge its outputs. Whether they augment
    at all is the recipe's ``train.augment`` (auto: on image records)."""
    if "name" not in cfg.data.model_fields_set or cfg.data.name not in DATASETS:
        return False
    return DATASETS.get(cfg.data.name).hflip is True


def _population_dataset(population: Pair, n_classes: int, hflip: bool) -> ArrayDataset:
    X, y = population
    kind = records_kind(X)
    return ArrayDataset("population", X.numpy(), y.numpy(), n_classes, kind, False, "--population", hflip=hflip)


def _check_model(model: torch.nn.Module, X: torch.Tensor, n_classes: int, recipe: Recipe, name: str) -> None:
    """The recipe's model takes the audit's records and has the audited model's number of outputs (probed as
    the audited model is, by :func:`.data.probe_classes`)."""
    who = f"{recipe.label}: its model {name!r}"
    fix = "the factory must build the architecture of the audited model, taking input_shape"
    out = probe_classes(model, X, torch.device("cpu"), who, fix, ConfigError)
    if out != n_classes:
        raise ConfigError(
            f"{who} answers records of shape {'×'.join(map(str, X.shape[1:]))} with {out} outputs, but the audited "
            f"model has {n_classes} output classes; the factory must build the architecture of the audited model, "
            "with n_classes outputs"
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
    ds = _population_dataset(population, n_classes, recipe_hflip(recipe.cfg))
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
        "augment": augment,
        "hflip": augment and ds.hflip,
        "references": n_refs,  # planned; the audit sets what was trained, and on what (``trained_on``)
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
