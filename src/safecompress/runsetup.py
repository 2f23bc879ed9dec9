"""What a run settles before its method trains: the data, the resolved config (checked against a resumed
folder's), the membership split and its checks, the canaries, the device and the model's spec."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .canaries import Canaries, make_canaries
from .config import RunConfig, _migrate_legacy_method_keys, build_config, dump_yaml, read_yaml
from .data import ArrayDataset, DataContext, load_dataset
from .data.split import MembershipSplit, make_split
from .defences import Defence, build_defence
from .errors import ConfigError, RunFolderError, SafeCompressError
from .fileio import atomic_write_json, atomic_write_text
from .models import MODELS, ModelSpec, model_entry
from .runfolder import RunFolder, SafeFileHandler
from .train import resolve_device
from .validate import run_split_problems

log = logging.getLogger(__name__)
VOCABULARY = "vocabulary.json"  # a text run's fitted vocabulary (and its settings), checked on resume and audit
MAX_VOCABULARY_BYTES = 256 << 20


@dataclass
class RunSetup:
    """A run's inputs, settled: the resolved config, the dataset and its split, the canaries (None without
    ``audit.canaries``), the device, whether images are augmented, the model's spec, and the configured defence
    (built once here; the method's context receives it)."""

    cfg: RunConfig
    ds: ArrayDataset
    split: MembershipSplit
    canaries: Canaries | None
    device: torch.device
    augment: bool
    spec: ModelSpec
    defence: Defence


def prepare_run(folder: RunFolder, cfg: RunConfig) -> RunSetup | None:
    """Load the data, then write (or, resuming, check) config.yaml, split.npz and the canaries in ``folder``.
    None when the folder already holds the finished run of this config."""
    ds = load_dataset(cfg.data.name, data_context(cfg))
    cfg = _settled_config(folder, resolve_config(cfg, ds))
    if cfg is None:
        return None
    defence = build_defence(cfg)
    split = _split(folder, cfg, len(ds), defence)
    # the canaries first: the vocabulary is fitted on the attacker's population, which holds none of them
    canaries = Canaries.load(folder.work) if folder.resuming else None
    if canaries is None and cfg.audit.canaries:
        canaries = make_canaries(split, ds.y, ds.n_classes, cfg.audit.canaries, split.seed)
        canaries.save(folder.work)
    ds = featurised(ds, split, canaries)
    if ds.feature_state is not None:
        vocab_path = folder.path(VOCABULARY)
        if folder.resuming and vocab_path.exists():
            check_vocabulary(vocab_path, ds, "resume")
        else:
            if folder.resuming:
                log.warning(
                    "%s holds no %s (a run made before it was saved): writing the refitted one",
                    folder.final,
                    VOCABULARY,
                )
            atomic_write_json(vocab_path, ds.feature_state)
            folder.record(VOCABULARY)
    device = resolve_device(cfg.train.device)
    augment = wants_augment(cfg, ds)
    if augment and ds.kind != "image":
        raise ConfigError(
            "train.augment=true needs image data (crop+flip); use train.augment=auto or false for tables and text"
        )
    spec = model_spec(cfg, ds)
    return RunSetup(cfg, ds, split, canaries, device, augment, spec, defence)


def featurised(ds: ArrayDataset, split: MembershipSplit, canaries: Canaries | None = None) -> ArrayDataset:
    """``ds`` with its learned features (a text vocabulary) fitted on the attacker's population only — the
    split's population less every canary (members and non-members alike) — never on its members
    (docs/design.md §2); other datasets unchanged. Pass the run's canaries wherever a run is featurised
    (a new run, ``--resume``, ``safecompress audit``) so the vocabulary is the same each time."""
    if ds.needs_fit:
        population = np.asarray(split["population"])
        if canaries is not None:
            population = np.setdiff1d(population, canaries.idx)
        ds = ds.fitted(population)
        log.info(
            "%s: vocabulary of %d tokens fitted on the population part (%d documents%s)",
            ds.name,
            ds.vocab_size,
            len(population),
            "" if canaries is None else f", its {len(canaries)} canaries excluded",
        )
    log.info(
        "dataset %s: %d samples, shape %s, %d classes (%s)", ds.name, len(ds), ds.input_shape, ds.n_classes, ds.source
    )
    return ds


def check_vocabulary(path: Path, ds: ArrayDataset, action: str) -> None:
    """Refuse to ``action`` (resume, audit) a run whose saved ``vocabulary.json`` differs from the one just
    refitted on the same population: the model's embedding rows would mean other tokens."""
    from .fileio import read_limited

    try:
        saved = json.loads(read_limited(path, MAX_VOCABULARY_BYTES, "vocabulary").decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFolderError(
            f"cannot {action} {path.parent}: its {path.name} cannot be read ({str(exc)[:200]}); restore the file, "
            "or start a new run (--overwrite or another --out)"
        ) from None
    now = ds.feature_state
    if saved == now:
        return
    what = _vocabulary_difference(saved, now)
    raise RunFolderError(
        f"cannot {action} {path.parent}: the vocabulary refitted from the {ds.name} corpus at {ds.source} differs "
        f"from the run's {path.name} ({what}), so the corpus or its parser changed since the run was made and the "
        "model's token ids would mean other words. Fetch the same corpus again (for spam-assassin: "
        "sh scripts/fetch-spam-assassin.sh) and use the safecompress version that made the run, or start a new "
        "run (--overwrite or another --out)"
    )


def _vocabulary_difference(saved: object, now: dict | None) -> str:
    if not isinstance(saved, dict) or now is None:
        return "the saved file is not a vocabulary"
    for key in now:
        if key != "tokens" and saved.get(key) != now[key]:
            return f"{key}: {saved.get(key)!r} saved, {now[key]!r} now"
    old, new = saved.get("tokens"), now["tokens"]
    if not isinstance(old, list):
        return "the saved file holds no token list"
    for i, (a, b) in enumerate(zip(old, new)):
        if a != b:
            return f"token id {i}: {a!r} saved, {b!r} now"
    return f"{len(old)} tokens saved, {len(new)} now"


def check_model_vocabulary(path: Path, ds: ArrayDataset) -> None:
    """The text model saved at ``path`` must have an embedding row per token of the dataset's vocabulary."""
    from .checkpoint import read_model_file

    if not ds.vocab_size:
        return
    saved = read_model_file(path)[2].get("model", {}).get("vocab_size", 0)
    if saved != ds.vocab_size:
        raise RunFolderError(
            f"{path} was trained with a vocabulary of {saved} tokens but the {ds.name} data featurised for it has "
            f"{ds.vocab_size}: the model and the data do not belong together. Fetch the corpus the run used, or "
            "start a new run (--overwrite or another --out)"
        )


def model_spec(cfg: RunConfig, ds: ArrayDataset) -> ModelSpec:
    """The spec of the run's model for the (featurised) dataset."""
    return ModelSpec(cfg.model.name, ds.input_shape, ds.n_classes, cfg.model.width, cfg.model.norm, ds.vocab_size or 0)


def _settled_config(folder: RunFolder, cfg: RunConfig) -> RunConfig | None:
    """Write config.yaml; resuming, refuse a different config, and return None when the run is complete."""
    config_path = folder.path("config.yaml")
    if folder.resuming and config_path.exists():
        diffs = _config_differences(_as_run(read_yaml(config_path)), _as_run(cfg.to_dict()))
        if diffs:
            raise RunFolderError(
                f"cannot resume {folder.final}: its run used a different configuration ({'; '.join(diffs)}). "
                "Use --overwrite to replace it or choose another --out"
            )
        if folder.path("report.json").exists():
            return None
    atomic_write_text(config_path, dump_yaml(cfg))
    folder.record("config.yaml")
    return cfg


def _split(folder: RunFolder, cfg: RunConfig, n_total: int, defence: Defence) -> MembershipSplit:
    """The run's membership split (the resumed folder's, or a new one written to split.npz), checked against
    what the method, the defence and the audit need."""
    split_path = folder.path("split.npz")
    if folder.resuming and split_path.exists():
        split = MembershipSplit.load(split_path, n_total=n_total)
    else:
        seed = cfg.data.split.seed if cfg.data.split.seed is not None else cfg.seed
        split = make_split(n_total, cfg.data.split, seed, cfg.data.max_samples)
        split.save(split_path)
        folder.record("split.npz")
    log.info("split sizes: %s", split.sizes())
    problems = [
        *defence.split_problems(split.sizes()),
        *run_split_problems(cfg, split.sizes()),
    ]
    if problems:
        raise ConfigError(problems)
    return split


def wants_augment(cfg: RunConfig, ds: ArrayDataset) -> bool:
    """Whether training augments its inputs: ``train.augment`` true, or auto on image data."""
    return cfg.train.augment is True or (cfg.train.augment == "auto" and ds.kind == "image")


def data_context(cfg: RunConfig) -> DataContext:
    d = cfg.data
    ctx = DataContext(
        data_dir=d.data_dir,
        download=d.download,
        path=d.path,
        label_column=d.label_column,
        sensitive_column=d.sensitive_column,
        synth_samples=d.synth_samples,
        synth_seed=d.synth_seed,
        image_size=d.image_size,
    )
    return ctx


def resolve_config(cfg: RunConfig, ds: ArrayDataset) -> RunConfig:
    """Fill the choices that depend on the data (``model.name: auto``) and check model/data fit."""
    raw = cfg.to_dict()
    if cfg.model.name == "auto":
        auto = {"image": cfg.model.auto_image, "text": cfg.model.auto_text}
        raw["model"]["name"] = auto.get(ds.kind, cfg.model.auto_tabular)
    resolved = build_config(raw)
    sc = resolved.safecompress
    needs_attr = []
    if resolved.method.name == "safecompress":
        from .attacks import ATTACKS

        needs_attr += [f"safecompress.simulate: {n}" for n in sc.simulate if ATTACKS.get(n).needs_sensitive]
        needs_attr += ["safecompress.attribute_adversary"] if sc.attribute_adversary else []
    if ds.kind == "text" and resolved.method.name == "safecompress" and "inversion" in sc.simulate:
        raise ConfigError(
            "safecompress.simulate: inversion reconstructs inputs by gradient descent and cannot run on text "
            f"({ds.name}: token ids have no input gradient); drop it from safecompress.simulate"
        )
    if needs_attr and ds.sensitive is None:
        raise ConfigError(
            f"{' and '.join(needs_attr)}: needs a dataset with a sensitive attribute, and {ds.name} has "
            "none; use income, cifar10-synth-attr, or your own npz/csv with data.sensitive_column"
        )
    entry = model_entry(resolved.model.name)
    if ds.kind not in entry.kinds:
        raise ConfigError(
            f"model.name={resolved.model.name!r} cannot take {ds.kind} data ({ds.name}); "
            f"choose one of: {', '.join(n for n, e in MODELS.items() if ds.kind in e.kinds)}"
        )
    return resolved


@contextmanager
def log_to(path: Path) -> Iterator[None]:
    """Copy the package's INFO-and-above log records into ``path`` while the block runs."""
    handler = SafeFileHandler(path, encoding="utf-8")  # never through a symlink
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    pkg = logging.getLogger("safecompress")
    old_level = pkg.level
    pkg.addHandler(handler)
    if pkg.getEffectiveLevel() > logging.INFO:
        pkg.setLevel(logging.INFO)  # console handlers keep their own level
    try:
        yield
    finally:
        pkg.removeHandler(handler)
        pkg.setLevel(old_level)
        handler.close()


def _as_run(raw: dict) -> dict:
    """A resolved config as the run uses it: an older version's single-method ``sparse`` keys moved to
    ``method.params`` (silently), and the method's parameters with their defaults filled in — so a run folder
    written before ``method.params`` existed, which recorded every default, still resumes."""
    from .methods import METHODS

    try:
        cfg = RunConfig.model_validate(_migrate_legacy_method_keys(raw, warn=False))
        params = METHODS.get(cfg.method.name).params(cfg).model_dump()
    except (ValueError, SafeCompressError):  # not a valid config any more: compare it as it stands
        return raw
    out = cfg.to_dict()
    out["method"] = {**out["method"], "params": params}
    return out


def _config_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += _config_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            diffs.append(f"{prefix}{key}: {va!r} -> {vb!r}")
    return diffs


def served_model(defence, model: torch.nn.Module, part, seed: int, device: torch.device) -> torch.nn.Module:
    """The model as served: ``model`` under the defence's inference-time wrapper (MemGuard), fitted on
    the run's train (members) vs val (held-out) parts; ``model`` itself for training-time defences."""
    return defence.deploy(model, part("train"), part("val"), seed, device)
