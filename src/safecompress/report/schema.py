"""Typed ``report.json``: what the presentation layer (CLI, ``report.html``, ``safecompress bench``, the bench
scripts) reads from a run, as pydantic models instead of string keys.

The schema is additive. Every model keeps the keys it does not name (``extra="allow"``) and dumps them back,
so ``RunReport.model_validate(d).model_dump(mode="json", exclude_unset=True) == d`` for any report, and a
field that older reports lack is optional (``None`` when absent). Only what a reader uses is named; the
writers (:mod:`safecompress.runner`, :mod:`safecompress.auditor`) still build plain dicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from .headline import Row


class Section(BaseModel):
    """A part of report.json: named fields typed, every other key kept as it is."""

    model_config = ConfigDict(extra="allow")

    @classmethod
    def coerce(cls, value: Section | Mapping[str, Any]):
        """``value`` itself when it is already this model, else the model validated from a report dict."""
        return value if isinstance(value, cls) else cls.model_validate(value)


# -- the run -----------------------------------------------------------------------------------------


class Task(Section):
    accuracy: float  # on the test part
    train_accuracy: float
    val_accuracy: float | None = None
    test_loss: float | None = None
    train_loss: float | None = None


class Compression(Section):
    density: float  # of the prunable weights
    file_bytes: int
    nonzeros: int | None = None
    parameters: int | None = None
    dense_bytes: int | None = None
    ratio: float | None = None  # dense_bytes / file_bytes
    values: str | None = None  # fp32, fp16, int8


class Timing(Section):
    """Seconds; a method's own parts (SafeCompress's ``rounds_s``, ...) are listed before ``sparse_training_s``."""

    train_s: float
    total_s: float | None = None
    audit_s: float | None = None
    rounds_s: float | None = None  # SafeCompress: its rounds (candidates, simulated attacks)
    sparse_training_s: float | None = None
    overhead_x: float | None = None  # train_s / sparse_training_s


class ModelInfo(Section):
    name: str
    parameters: int
    width: float | None = None
    norm: str | None = None


class DataInfo(Section):
    name: str | None = None
    kind: str | None = None
    n_samples: int | None = None
    n_classes: int | None = None
    split: dict[str, int] | None = None  # part -> number of records


class DefenceInfo(Section):
    name: str = "none"
    params: dict[str, Any] | None = None


class CodeVersion(Section):
    version: str
    source_sha256: str


class Layer(Section):
    shape: list[int]
    nonzeros: int
    density: float
    ever_active: float | None = None


class SparseDetails(Section):
    layers: dict[str, Layer] | None = None


class SafeCompressDetails(Section):
    final_round: int | str | None = None  # the round whose model is served, or "final"


class MethodDetails(Section):
    sparse: SparseDetails | None = None
    safecompress: SafeCompressDetails | None = None


# -- the audit ---------------------------------------------------------------------------------------


class AttackMetrics(Section):
    """One membership attack: metrics.membership_metrics plus the auditor's bookkeeping."""

    auc: float
    tpr_at_fpr: dict[str, float | None]  # FPR level ("0.01") -> TPR, None where the non-members cannot resolve it
    auc_ci: list[float] | None = None  # None without bootstrap
    auc_p: float | None = None
    advantage: float | None = None
    advantage_ci: list[float] | None = None
    balanced_accuracy: float | None = None
    resolution: dict[str, str] | None = None  # FPR level -> why it is not resolved
    wall_s: float | None = None
    white_box: bool | None = None


class Chance(Section):
    """The strongest of K attacks against its chance level (label permutations)."""

    attacks: int
    observed_max_auc: float
    chance_max_auc: float
    p_value: float


class WorstAttack(Section):
    """The strongest attack (highest AUC) and the best TPR per FPR level over all attacks."""

    attack: str
    auc: float
    max_tpr_at_fpr: dict[str, float | None]
    max_tpr_attack: dict[str, str | None]
    auc_p: float | None = None
    chance: Chance | None = None
    significant: bool | None = None


class PerClass(Section):
    attack: str
    auc: dict[str, float]  # class -> AUC of the strongest attack on that class's records


class CanaryWorst(Section):
    attack: str
    auc: float
    tpr_at_lowest_fpr: tuple[float, str]  # (best TPR at 10 false positives, the attack reaching it)
    auc_p: float | None = None


class Canaries(Section):
    n_members: int
    n_nonmembers: int
    worst: CanaryWorst
    attacks: dict[str, AttackMetrics] | None = None


class AttributeStrongest(Section):
    view: str
    auc: float
    auc_ci: list[float] | None = None
    accuracy: float | None = None
    advantage: float | None = None


class AttributeAudit(Section):
    """Attribute inference: either skipped (with the reason) or the strongest view against the baselines
    that guess the attribute without the model."""

    skipped: str | None = None
    strongest: AttributeStrongest | None = None
    baselines: dict[str, float] | None = None


class InversionAudit(Section):
    skipped: str | None = None
    auc: float | None = None
    auc_ci: list[float] | None = None
    member_closer_rate: float | None = None


class ExtractionAudit(Section):
    """Model extraction: a surrogate trained on the served answers to population queries, per query budget and
    mode (``curves``); the headline is its fidelity (argmax agreement with the target on the audit records) at the
    largest budget of ``mode``, with a bootstrap interval."""

    family: str = "extraction"
    skipped: str | None = None
    mode: str | None = None
    budget: int | None = None
    fidelity: float | None = None
    fidelity_ci: list[float] | None = None
    fidelity_members: float | None = None
    fidelity_nonmembers: float | None = None
    accuracy: float | None = None  # the surrogate's own accuracy on the audit records
    target_accuracy: float | None = None
    constant_fidelity: float | None = None  # always answering the target's most frequent answer
    curves: dict[str, Any] | None = None


class EvasionPoint(Section):
    eps: float
    robust_accuracy: float
    checks: dict[str, bool] | None = None


class EvasionAudit(Section):
    """Evasion: white-box PGD robust accuracy on the audit records, per L∞ and L2 radius, with the attack's own
    sanity checks (the loss rose, the perturbation stayed in budget, robust ≤ clean)."""

    family: str = "evasion"
    skipped: str | None = None
    records: int | None = None
    clean_accuracy: float | None = None
    linf: list[EvasionPoint] = []
    l2: list[EvasionPoint] = []
    checks_passed: bool | None = None
    failed_checks: list[str] | None = None

    def largest(self, norm: str) -> EvasionPoint | None:
        """The point at the largest radius of ``norm`` (``linf`` or ``l2``), None when none was run."""
        points = getattr(self, norm)
        return points[-1] if points else None


class AttackProvenance(Section):
    """Where one attack's entry of a re-audited run comes from (``audit.provenance``, written by ``safecompress
    audit``): the reference models it rests on, and when, by which command and which code it was audited. The
    last three are None for an attack kept from an audit that recorded no provenance (a run's own audit, or a
    re-audit by an older safecompress)."""

    references: int | None = None  # 0: the attack uses no reference model
    audited_at: str | None = None  # ISO 8601, UTC
    command: str | None = None
    code: CodeVersion | None = None


class AuditReport(Section):
    """report.json's ``audit`` (and audit.json): the membership attacks, the strongest one, and the attacks
    beyond membership."""

    attacks: dict[str, AttackMetrics]
    worst: WorstAttack
    per_class: PerClass | None = None
    n_members: int | None = None
    n_nonmembers: int | None = None
    references: int | None = None
    resolution: dict[str, str] | None = None
    timing: dict[str, float] | None = None
    canaries: Canaries | None = None
    attribute: AttributeAudit | None = None
    inversion: InversionAudit | None = None
    extraction: ExtractionAudit | None = None
    evasion: EvasionAudit | None = None
    provenance: dict[str, AttackProvenance] | None = None  # per attack; only after `safecompress audit`

    @property
    def strongest(self) -> AttackMetrics:
        """The per-attack metrics of the strongest attack."""
        return self.attacks[self.worst.attack]

    @property
    def attack_names(self) -> list[str]:
        """Every attack the audit ran (:func:`attack_names`)."""
        return attack_names(self.model_dump(exclude_none=True))

    @property
    def compared_with(self) -> str | None:
        """The run given to ``safecompress audit --compare``, as written (``compare.other``)."""
        other = ((self.model_extra or {}).get("compare") or {}).get("other")
        return other if isinstance(other, str) and other else None

    @classmethod
    def load(cls, path: str | Path) -> AuditReport:
        """An audit.json, or a run folder holding one."""
        return cls.model_validate(_read(path, "audit.json"))


def attack_names(audit: Mapping[str, Any]) -> list[str]:
    """Every attack an audit section (a dict) ran: the membership attacks, then those of other families (their
    entries carry a ``family``)."""
    others = [k for k, v in audit.items() if isinstance(v, Mapping) and "family" in v]
    return [*audit.get("attacks", {}), *others]


def compared_folder(run_dir: str | Path, other: str | None) -> Path | None:
    """The folder of the run given to ``safecompress audit --compare`` (``other`` as written: relative to the
    run folder or to where the audit ran) when it still holds scores; else None."""
    for folder in (Path(run_dir) / other, Path(other)) if other else ():
        if (folder / "scores.npz").is_file():
            return folder
    return None


# -- the baseline ------------------------------------------------------------------------------------


class Delta(Section):
    """Run minus baseline on the same audit records (paired bootstrap), with the verdict."""

    delta_auc: float
    delta_auc_ci: list[float]
    auc_verdict: str


class Comparison(Section):
    strongest: Delta
    attacks: dict[str, Delta] | None = None


class Baseline(Section):
    """The baseline run (cfg.baseline) as the main report summarises it."""

    method: str
    run_dir: str  # relative to the main run's folder
    task: Task | None = None
    compression: Compression | None = None
    timing: Timing | None = None
    audit_worst: WorstAttack | None = None
    comparison: Comparison | None = None


# -- report.json -------------------------------------------------------------------------------------


class RunReport(Section):
    """One run's report.json."""

    method: str
    dataset: str
    seed: int
    version: str
    model: ModelInfo
    task: Task
    compression: Compression
    timing: Timing
    schema_version: int | None = None
    defence: DefenceInfo | None = None
    code: CodeVersion | None = None
    data: DataInfo | None = None
    method_details: MethodDetails | None = None
    environment: dict[str, Any] | None = None
    audit: AuditReport | None = None
    baseline: Baseline | None = None
    manifest: dict[str, str] | None = None
    history: list[dict[str, float]] | None = None  # per-epoch loss and running train accuracy of the model

    @classmethod
    def load(cls, path: str | Path) -> RunReport:
        """A report.json, or a run folder holding one."""
        return cls.model_validate(_read(path, "report.json"))

    def headline(self) -> list[Row]:
        """The rows the CLI summary, report.html and the benchmarks show for this run."""
        from .headline import headline

        return headline(self)

    @property
    def final_round(self) -> int | str | None:
        """The SafeCompress round whose model is served ("final" for the last model), None for other methods."""
        details = self.method_details
        return details.safecompress.final_round if details and details.safecompress else None

    @property
    def layers(self) -> dict[str, Layer]:
        """Per-layer sparsity of a sparse method's model; empty for a dense one."""
        details = self.method_details
        return (details.sparse.layers or {}) if details and details.sparse else {}


def _read(path: str | Path, name: str) -> dict[str, Any]:
    path = Path(path)
    return json.loads((path / name if path.is_dir() else path).read_text())
