"""``safecompress.outside.audit``: audit a model trained outside safecompress (a file of any supported
format, a torch ``nn.Module`` or any callable returning logits) on members vs non-members, or precomputed
outputs (:func:`audit_scores`), and the result (:class:`OutsideAudit`) that saves the usual audit files.

Everything the user gives is checked before an attack runs and before any file is written: the model file,
the data files, the records' shape against the model's input, the labels against its outputs, and a
training recipe (:mod:`.recipe`) against both."""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..auditor import AuditResult, write_audit
from ..errors import RunFolderError, SafeCompressError
from ..fileio import atomic_write_json, atomic_write_text, sha256_file
from ..provenance import code_version
from ..train import predict_logits
from .data import Pair, as_pair, check_overlap, check_records, probe_classes
from .engine import run_attacks
from .formats import LoadedModel, load_outside_model
from .page import render_page, roc_figure
from .policy import plan
from .recipe import load_recipe, recipe_references
from .scores import read_scores

log = logging.getLogger(__name__)

FILES = ("audit.json", "scores.npz", "roc.png", "report.json", "report.html")


class CallableModel(nn.Module):
    """Any function from a float batch (torch tensor) to logits (tensor or array), as a module."""

    def __init__(self, fn: Callable[[torch.Tensor], Any]):
        super().__init__()
        self.fn = fn

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        out = self.fn(X)
        return out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))


def as_model(model: Any, trust_code: bool = False) -> LoadedModel:
    """A file path, a :class:`LoadedModel`, an ``nn.Module`` or a callable returning logits; ``trust_code``:
    a safecompress model file may name a user model factory, imported and run to rebuild it."""
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, (str, Path)):
        return load_outside_model(model, trust_code)
    if isinstance(model, torch.jit.ScriptModule):
        return LoadedModel(model, "torchscript", False, None, type(model).__name__)
    if isinstance(model, torch.fx.GraphModule):  # torch.export's .module(): a graph, not the author's layers
        return LoadedModel(model, "pt2", False, None, type(model).__name__)
    if isinstance(model, nn.Module):
        return LoadedModel(model, "torch", True, None, type(model).__name__)
    if callable(model):
        return LoadedModel(CallableModel(model), "callable", False, None, getattr(model, "__name__", "callable"))
    raise SafeCompressError(
        f"cannot audit a {type(model).__name__}: give a model file, a torch nn.Module or a callable returning logits"
    )


def model_device(module: nn.Module) -> torch.device:
    """Where the module's parameters live (the CPU for a parameterless module or a foreign runtime)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def _accuracy(module: nn.Module, pair: Pair, device: torch.device) -> float:
    return round(float((predict_logits(module, pair[0], device).argmax(1) == pair[1]).float().mean()), 6)


@dataclass
class OutsideAudit:
    """The result of an outside audit: the audit (``result.report`` is audit.json), the skipped attacks with
    their reasons, what was audited, and the recipe its reference models were trained with (None: none)."""

    result: AuditResult
    skipped: dict[str, str]
    model: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    recipe: dict[str, Any] | None = None

    @property
    def aucs(self) -> dict[str, float]:
        """AUC of every membership attack that ran."""
        return {name: m["auc"] for name, m in self.result.report["attacks"].items()}

    @property
    def report(self) -> dict[str, Any]:
        """report.json: the audit (as audit.json), the skipped attacks, the model, the data, the code, and
        (with references) the recipe they were trained with."""
        recipe = {} if self.recipe is None else {"recipe": self.recipe}
        return {
            "kind": "outside_audit",
            "version": __version__,
            "code": code_version(),
            "seed": self.seed,
            "model": self.model,
            "data": self.data,
            "task": self.task,
            "skipped": self.skipped,
            **recipe,
            "audit": self.result.report,
        }

    def to_html(self) -> str:
        """report.html's page (self-contained: the ROC figure inline, as SVG)."""
        a = self.result.report
        return render_page(self.report, roc_figure(self.result.curves, a["n_members"], a["n_nonmembers"]))

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write audit.json, scores.npz, roc.png, report.json and report.html into ``folder``."""
        folder = check_out(folder, overwrite)
        folder.mkdir(parents=True, exist_ok=True)
        write_audit(self.result, folder)
        atomic_write_json(folder / "report.json", self.report)
        atomic_write_text(folder / "report.html", self.to_html())
        log.info("outside audit written to %s", folder)
        return folder


def check_out(folder: str | Path, overwrite: bool = False) -> Path:
    """The output folder, refused when it exists with other files in it (or audit files, unless ``overwrite``)."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"--out {folder} is a file; give a folder for the audit files")
    if folder.is_dir():
        present = {p.name for p in folder.iterdir()}
        if present - set(FILES) or (present and not overwrite):
            raise RunFolderError(
                f"--out {folder} already holds files ({', '.join(sorted(present)[:5])}); choose a new folder"
                + ("" if present - set(FILES) else " or pass overwrite=True (CLI: --overwrite)")
            )
    return folder


def _file_info(value: Any, pair: Pair) -> dict[str, Any]:
    info: dict[str, Any] = {"records": len(pair[1])}
    if isinstance(value, (str, Path)):
        info["file"] = str(value)
    return info


def _timed_attacks(module: nn.Module, pairs: dict[str, Pair], names, skipped, **kwargs: Any) -> AuditResult:
    """:func:`.engine.run_attacks` on the parts (members, non-members, the optional population), with the
    time it took (reference models included) as the report's ``timing.audit_s``."""
    t0 = time.perf_counter()
    result = run_attacks(
        module, pairs["members"], pairs["nonmembers"], pairs.get("population"), names, skipped, **kwargs
    )
    result.report["timing"]["audit_s"] = round(time.perf_counter() - t0, 3)
    return result


def audit(
    model: Any,
    members: Any,
    nonmembers: Any,
    population: Any = None,
    attacks: Sequence[str] | None = None,
    seed: int = 0,
    *,
    n_bootstrap: int = 200,
    attack_params: dict[str, dict[str, Any]] | None = None,
    recipe: Any = None,
    refs: int | None = None,
    trust_code: bool = False,
) -> OutsideAudit:
    """Audit ``model`` (a model file, an ``nn.Module`` or a callable returning logits) on ``members`` vs
    ``nonmembers`` (each an ``(X, y)`` pair or an .npz/.csv file); ``population`` (records the model never
    saw) lets the attacks that calibrate on known non-members run. ``recipe`` (a ``safecompress run`` config
    file, :class:`~safecompress.config.RunConfig` or dict naming the model factory and its training; needs
    ``population``) trains ``refs`` reference models (default: its ``audit.refs``) on the population, so the
    attacks that need them run too. Attacks the model cannot support are skipped, each with its reason
    (:mod:`.policy`). A population sharing a record (by features) with the members or non-members is refused:
    the references train on it and the calibrated attacks take it as known non-members. ``trust_code``: a
    safecompress model file naming a user model factory (``"package.module:function"``) may import it."""
    loaded = as_model(model, trust_code)
    if recipe is None and refs is not None:
        raise SafeCompressError("refs: reference models are trained only from a recipe; give one, or drop refs")
    if refs is not None and refs < 1:
        raise SafeCompressError(f"refs: at least 1 reference model, got {refs}")
    recipe = None if recipe is None else load_recipe(recipe)
    if recipe is not None and population is None:
        raise SafeCompressError(
            f"{recipe.label} needs a population (--population P.npz): the reference models train on records "
            "the audited model never saw, and never on its members or non-members"
        )
    pairs = {"members": as_pair(members, "members"), "nonmembers": as_pair(nonmembers, "nonmembers")}
    if population is not None:
        pairs["population"] = as_pair(population, "population")
    overlap = check_overlap(
        pairs,
        "the reference models train on it, and the calibrated attacks fit on it as known non-members"
        if recipe is not None
        else "the calibrated attacks fit on it as known non-members",
    )
    names, skipped = plan(
        list(attacks) if attacks else None,
        model_format=loaded.format,
        white_box=loaded.white_box,
        population=population is not None,
        references=recipe is not None,
    )
    source = f"the {loaded.format} model {loaded.source}".rstrip()
    check_records(pairs, loaded.input_shape, None, source)
    device = model_device(loaded.module)
    n_classes = probe_classes(loaded, pairs["members"][0], device)
    check_records(pairs, None, n_classes, source)
    info = {
        "format": loaded.format,
        "source": loaded.source,
        "white_box": loaded.white_box,
        "n_classes": n_classes,
        "input_shape": list(pairs["members"][0].shape[1:]),
    }
    if isinstance(model, (str, Path)):
        info["sha256"] = sha256_file(model)
    references = nullcontext((None, None))
    if recipe is not None:
        references = recipe_references(
            recipe, pairs["population"], n_classes, refs=refs, seed=seed, device=device, target=loaded.module
        )
        if attack_params is None:
            attack_params = recipe.cfg.audit.attack_params
    with references as (pool, recipe_info):
        result = _timed_attacks(
            loaded.module,
            pairs,
            names,
            skipped,
            n_classes=n_classes,
            seed=seed,
            device=device,
            n_bootstrap=n_bootstrap,
            attack_params=attack_params,
            references=pool,
        )
    if recipe_info is not None:  # what the references were actually trained on (none: no attack needed them)
        trained = result.report["references"]
        recipe_info["references"] = trained
        recipe_info["trained_on"] = {"population": len(pairs["population"][1]) if trained else 0, **overlap}
    task = {
        "member_accuracy": _accuracy(loaded.module, pairs["members"], device),
        "nonmember_accuracy": _accuracy(loaded.module, pairs["nonmembers"], device),
    }
    data = {
        name: _file_info(value, pairs[name])
        for name, value in (("members", members), ("nonmembers", nonmembers), ("population", population))
        if name in pairs
    }
    return OutsideAudit(result, result.report["skipped"], info, data, task, seed, recipe_info)


def audit_scores(
    path: str | Path, attacks: Sequence[str] | None = None, seed: int = 0, *, n_bootstrap: int = 200
) -> OutsideAudit:
    """Audit precomputed outputs (an .npz; keys in :mod:`.scores`) with the attacks that need nothing else."""
    table, parts, n_classes = read_scores(path)
    names, skipped = plan(
        list(attacks) if attacks else None,
        model_format="scores",
        white_box=False,
        population="population" in parts,
        scores_only=True,
    )
    result = _timed_attacks(table, parts, names, skipped, n_classes=n_classes, seed=seed, n_bootstrap=n_bootstrap)
    device = torch.device("cpu")
    info = {
        "format": "scores",
        "source": str(path),
        "white_box": False,
        "n_classes": n_classes,
        "sha256": sha256_file(path),
    }
    task = {
        "member_accuracy": _accuracy(table, parts["members"], device),
        "nonmember_accuracy": _accuracy(table, parts["nonmembers"], device),
    }
    data = {name: {"records": len(pair[1])} for name, pair in parts.items()}
    return OutsideAudit(result, result.report["skipped"], info, data, task, seed)
