"""Typed run configuration: YAML + presets + dotted overrides, validated all at once.

Resolution order (later wins): built-in defaults < preset (``--preset``) < config file (``--config``)
< dotted overrides (``--set data.name=digits``). Unknown keys are errors that name the closest valid
key; every problem is reported in one message.
"""

from __future__ import annotations

import copy
import functools
import logging
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from . import registries
from .errors import ConfigError, UnknownNameError
from .params import validate_params
from .registry import closest

log = logging.getLogger(__name__)

# A split size: an int is a count of samples, a float is a fraction.
Size = Union[StrictInt, float]


def _check_name(registry_getter, name: str) -> str:
    """Validate a plugin name inside pydantic (so it is reported with every other problem)."""
    try:
        registry_getter().get(name)
    except UnknownNameError as exc:
        raise ValueError(exc.problems[0]) from None
    return name


def RegistryName(registry_getter):
    """A str field that must name an entry of a registry (a :mod:`.registries` function; checked with the other
    problems)."""
    return Annotated[str, AfterValidator(functools.partial(_check_name, registry_getter))]


DatasetName = RegistryName(registries.datasets)
MethodName = RegistryName(registries.methods)
AttackName = RegistryName(registries.attacks)
PruneName = RegistryName(registries.prune_criteria)
GrowName = RegistryName(registries.grow_criteria)
AllocationName = RegistryName(registries.allocations)
StructureName = RegistryName(registries.structures)
ObjectiveName = RegistryName(registries.objectives)
DefenceName = RegistryName(registries.defences)


def _check_plugin(registry_getter, name: str, check) -> None:
    """``check(plugin class)`` inside pydantic: its ConfigError becomes a ValueError reported with every
    other problem. An unknown ``name`` is skipped (the name field's own check reports it)."""
    try:
        cls = registry_getter().get(name)
    except Exception:
        return
    try:
        check(cls)
    except ConfigError as exc:
        raise ValueError("; ".join(exc.problems)) from None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(_Section):
    """Sizes of the membership split (docs/design.md §2).

    The disjoint parts (train, val, test, population, probe_nonmembers, audit_nonmembers) are counts
    (int) or fractions of the dataset (float). probe_members and audit_members are drawn from train:
    counts, fractions of train, or null = as many as their non-member counterpart (balanced).
    """

    train: Size = 0.25
    val: Size = 0.1
    test: Size = 0.15
    population: Size = 0.3
    probe_nonmembers: Size = 0.1
    audit_nonmembers: Size = 0.1
    probe_members: Size | None = None
    audit_members: Size | None = None
    seed: int | None = Field(None, description="seed of the split; null = the run seed")


class DataConfig(_Section):
    name: DatasetName = "purchase100-synth"
    data_dir: Path | None = None
    download: bool = False
    path: Path | None = None
    label_column: str = "label"
    sensitive_column: str | None = Field(
        None, description="attribute-inference datasets: the sensitive column (income: SEX)"
    )
    synth_samples: int | None = Field(None, gt=0)
    synth_seed: int = 0
    image_size: int = Field(32, gt=0)
    max_samples: int | None = Field(None, gt=0, description="use at most this many samples (random, seeded)")
    split: SplitConfig = Field(default_factory=SplitConfig)


class ModelConfig(_Section):
    name: str = "auto"
    auto_image: str = "cnn"
    auto_tabular: str = "mlp"
    auto_text: str = "fasttext"
    width: float = Field(1.0, gt=0)
    norm: Literal["auto", "batch", "group", "none"] = "auto"

    @field_validator("name", "auto_image", "auto_tabular", "auto_text")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v == "auto":
            return v
        if ":" in v:  # a user factory "package.module:function"
            from .models import model_entry

            try:
                model_entry(v)
            except ConfigError as exc:
                raise ValueError(exc.problems[0]) from None
            return v
        return _check_name(registries.models, v)


class TrainConfig(_Section):
    epochs: int = Field(20, ge=1)
    min_steps: int = Field(
        0,
        ge=0,
        description=(
            "raise the epochs until training takes at least this many optimizer steps (0 = off): budgets that follow "
            "the data size, so a small dataset is not under-trained"
        ),
    )
    batch_size: int = Field(128, ge=1)
    eval_batch_size: int = Field(1024, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    schedule: Literal["constant", "step", "cosine"] = "cosine"
    milestones: list[float] = Field(default_factory=lambda: [0.5, 0.75])
    gamma: float = Field(0.1, gt=0)
    augment: Union[bool, Literal["auto"]] = Field(
        "auto", description="crop+flip on training batches; auto = images only"
    )
    device: str = "auto"
    num_threads: int | None = Field(None, ge=1)

    @field_validator("milestones")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if any(not 0 < m < 1 for m in v) or v != sorted(v):
            raise ValueError("milestones are increasing fractions of the epochs, each in (0, 1), e.g. [0.5, 0.75]")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        base = v.split(":")[0]
        if base not in ("auto", "cpu", "cuda", "mps"):
            raise ValueError("device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
        return v


class SparseConfig(_Section):
    """The sparse engine (ignored by ``dense``). Steps are optimizer steps; fractions are of all steps."""

    density: float = Field(0.1, gt=0, le=1, description="fraction of prunable weights kept")
    distribution: AllocationName = Field("erk", description="layer-wise allocation: erk or uniform")
    dense_first_last: bool = False
    init_scale: bool = Field(True, description="sparse-from-scratch: rescale kept weights to the dense fan-in variance")
    update_every: int = Field(100, ge=1, description="ΔT: steps between topology updates")
    update_fraction: float = Field(0.3, ge=0, le=1, description="initial fraction replaced per update")
    update_decay: Literal["cosine", "linear", "constant"] = "cosine"
    update_stop: float = Field(0.75, gt=0, le=1, description="T_end: no updates after this fraction of training")
    prune: PruneName | None = Field(None, description="prune criterion; null = the method's own")
    grow: GrowName | None = Field(None, description="grow criterion; null = the method's own")
    structure: StructureName = Field(
        "unstructured",
        description=(
            "unstructured: single weights; channel: whole output units (conv filters, Linear rows), so the model "
            "shrinks into a smaller dense network (export --format structured); mlp/cnn-like chains only"
        ),
    )


DEFAULT_ATTACKS = [
    "loss",
    "confidence",
    "entropy",
    "m_entropy",
    "nn",
    "top3",
    "shadow",
    "lira",
    "rmia",
    "whitebox",
    "grad_norm",
    "label_only",
    "attribute",
    "inversion",
]


class AuditConfig(_Section):
    """The independent audit that ``safecompress run`` performs on the model it produced."""

    enabled: bool = True
    attacks: list[AttackName] = Field(default_factory=lambda: list(DEFAULT_ATTACKS))
    refs: int = Field(4, ge=1, description="reference/shadow models, trained with the target's recipe")
    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples for the 95% intervals")
    canaries: int = Field(
        0,
        ge=0,
        description=(
            "worst-case audit: K mislabelled records from the population, half inserted into the training data of "
            "the target and of every reference alike; metrics on the canaries alone beside the average case (0 = off)"
        ),
    )
    attack_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-attack options, e.g. {lira: {online: false, fixed_variance: true}}"
    )

    @field_validator("canaries")
    @classmethod
    def _enough_canaries(cls, v: int) -> int:
        if 0 < v < 20:
            raise ValueError(
                f"{v} canaries are too few: half are non-members, and the canary TPR is read at the lowest FPR that "
                "10 false positives among them resolve; use 0 (off) or at least 20"
            )
        return v

    @field_validator("attack_params")
    @classmethod
    def _known_attack_params(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, params in v.items():
            _check_name(registries.attacks, name)
            try:
                registries.attacks().get(name)(**params)
            except ConfigError as exc:
                raise ValueError("; ".join(exc.problems)) from None
        return v

    @model_validator(mode="after")
    def _enough_refs(self) -> "AuditConfig":
        try:
            needed = {n: registries.attacks().get(n).needs_references for n in self.attacks}
        except Exception:  # unknown names are reported by the field check
            return self
        short = sorted(n for n, k in needed.items() if k > self.refs)
        if short:
            raise ValueError(
                f"attacks {short} need at least {max(needed.values())} reference models but refs="
                f"{self.refs}; raise audit.refs or drop those attacks"
            )
        return self


class CandidateStrategy(_Section):
    """One way to make a candidate: replace ``fraction`` of each layer's weights (decayed by the
    schedule) by pruning with ``prune`` and growing with ``grow``."""

    prune: PruneName = "magnitude"
    grow: GrowName = "gradient"
    fraction: float = Field(0.3, ge=0, le=1)
    regularizer: Literal["none", "relaxloss", "confidence_penalty", "label_smoothing", "hamp"] = Field(
        "none",
        description=(
            "a privacy regulariser this candidate trains with (fine-tuning, and the main training "
            "until the next round if it is chosen); needs safecompress.finetune_steps > 0"
        ),
    )
    strength: float = Field(
        0.0,
        ge=0,
        description="its strength (relaxloss alpha, confidence_penalty beta, "
        "label_smoothing epsilon, hamp entropy_threshold)",
    )


def _default_candidates() -> list[CandidateStrategy]:
    return [
        CandidateStrategy(prune="magnitude", grow="gradient", fraction=0.3),
        CandidateStrategy(prune="magnitude", grow="random", fraction=0.3),
        CandidateStrategy(prune="set", grow="unfired", fraction=0.3),
        CandidateStrategy(prune="magnitude", grow="gradient", fraction=0.1),
    ]


class AdversarialConfig(_Section):
    """Min-max training against a simulated attacker (Nasr et al. 2018) inside the loop."""

    enabled: bool = False
    beta: float = Field(1.0, ge=0, description="weight of the attacker's member log-score in the model's loss")
    steps: int = Field(1, ge=1, description="attacker steps per model step")
    warmup: float = Field(0.2, ge=0, lt=1, description="start after this fraction of training")
    with_loss: bool = Field(False, description="also give the attacker the per-sample loss (white-box style)")


class SafeCompressConfig(_Section):
    """The test-driven loop (method.name: safecompress). Rounds happen every sparse.update_every steps
    until sparse.update_stop; simulated attackers use only the probe parts of the split."""

    simulate: list[AttackName] = Field(
        default_factory=lambda: ["nn"],
        description=(
            "[nn]=BMIA, [whitebox]=WMIA, both=MMIA; attribute (attribute inference) and inversion (model inversion) "
            "combine with them: the candidate's leakage is the worst over all (combine)"
        ),
    )
    candidates: list[CandidateStrategy] = Field(default_factory=_default_candidates)
    objective: ObjectiveName = "weighted"
    privacy_weight: float = Field(1.0, ge=0, description="λ in acc − λ·leakage")
    budget: float = Field(
        0.6,
        gt=0,
        le=1.0,
        description=("budget objective: the largest probe leakage allowed, in budget_metric units (AUC > 0.5, or TPR)"),
    )
    budget_metric: Literal["auc", "tpr"] = Field(
        "auc",
        description=(
            "what the budget bounds: the simulators' worst probe AUC, or their worst TPR at low_fpr (the low-FPR "
            "signal; use simulate: [calibrated])"
        ),
    )
    low_fpr: float = Field(0.01, gt=0, lt=0.5, description="the FPR at which the in-loop TPR is measured")
    simulate_served: bool = Field(
        True,
        description=(
            "black-box simulators attack the model as it will be served (under the run's inference-time defence: "
            "HAMP's output remapping, MemGuard), white-box ones its weights, as in the audit; false: every simulator "
            "attacks the bare network"
        ),
    )
    cross_fit: bool = Field(
        False,
        description=(
            "fit every simulator twice, once on each probe half, and test each on the other half: a candidate's "
            "leakage is the mean of the two, measured on every probe record instead of half of them (a less noisy "
            "test, at twice the simulators' cost)"
        ),
    )
    final: Literal["best_round", "last"] = Field(
        "best_round",
        description=(
            "best_round: the final model is the best round winner by the objective (can stop early); last: the model "
            "at the end of training (never cut short)"
        ),
    )
    delta: float = Field(0.01, ge=0, description="epsilon objective: accuracy slack")
    combine: Literal["worst", "mean"] = "worst"
    val_samples: int = Field(2000, ge=1, description="val samples used to score candidates")
    attacker_epochs: int = Field(30, ge=1)
    finetune_steps: int = Field(
        0,
        ge=0,
        description=(
            "train each candidate this many steps before testing it; the chosen one's steps are the model's own "
            "training steps (the main training skips as many batches, so the step budget stays the same)"
        ),
    )
    adversarial: AdversarialConfig = Field(default_factory=AdversarialConfig)
    attribute_adversary: float = Field(
        0.0,
        ge=0,
        description=(
            "β of an adversarial attribute head on the penultimate embedding: the network is trained so the head "
            "can do no better than the population prior (0 = off; needs a sensitive attribute)"
        ),
    )

    @field_validator("simulate")
    @classmethod
    def _known_simulators(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("simulate needs at least one attack, e.g. [nn]")
        from .methods.safecompress.simulate import simulation_problem

        for name in v:
            problem = simulation_problem(name, registries.attacks())
            if problem:
                raise ValueError(problem)
        return v

    @field_validator("candidates")
    @classmethod
    def _some_candidates(cls, v: list[CandidateStrategy]) -> list[CandidateStrategy]:
        if not v:
            raise ValueError("candidates needs at least one strategy")
        return v

    @model_validator(mode="after")
    def _budget_in_range(self) -> "SafeCompressConfig":
        if self.budget_metric == "auc" and self.budget <= 0.5:
            raise ValueError(
                f"an AUC budget must exceed 0.5 (chance); got {self.budget:g}. For a TPR budget set "
                "safecompress.budget_metric: tpr"
            )
        return self

    @model_validator(mode="after")
    def _regularised_candidates_train(self) -> "SafeCompressConfig":
        if any(c.regularizer != "none" for c in self.candidates) and self.finetune_steps == 0:
            raise ValueError(
                "candidates with a regularizer only differ once they train: set "
                "safecompress.finetune_steps > 0 (e.g. sparse.update_every)"
            )
        return self


class DefenceConfig(_Section):
    """A privacy defence applied while the method trains (any method): none, label_smoothing,
    confidence_penalty, relaxloss, advreg, early_stopping."""

    name: DefenceName = "none"
    params: dict[str, Any] = Field(default_factory=dict, description="the defence's parameters, e.g. {epsilon: 0.1}")

    @model_validator(mode="after")
    def _known_params(self) -> "DefenceConfig":
        _check_plugin(registries.defences, self.name, lambda cls: cls(**self.params))  # Defence.__init__ validates them
        return self


class MethodConfig(_Section):
    name: MethodName = Field("safecompress", description="safecompress (default), dense, rigl, gmp, ... (list methods)")
    params: dict[str, Any] = Field(
        default_factory=dict, description="the method's parameters, e.g. gmp: {prune_start: 0.1, prune_end: 0.6}"
    )

    @model_validator(mode="after")
    def _known_params(self) -> "MethodConfig":
        owner = f"method {self.name!r}"
        _check_plugin(registries.methods, self.name, lambda cls: validate_params(cls.Params, self.params, owner))
        return self


# SparseConfig fields that moved to the parameters of the methods that read them: old key -> new key.
# Still accepted for one release (with a warning); remove in the release after.
LEGACY_METHOD_KEYS = {
    "mest_grad_weight": "grad_weight",
    "prune_start": "prune_start",
    "prune_end": "prune_end",
    "distill_alpha": "alpha",
    "distill_temperature": "temperature",
    "dmp_keep": "keep",
}


def _migrate_legacy_method_keys(raw: dict[str, Any], warn: bool = True) -> dict[str, Any]:
    """``sparse.prune_end`` & co. (deprecated) moved to ``method.params``: where the run's method takes the
    parameter it is moved there (an explicit ``method.params`` entry wins), otherwise it is dropped, as
    such a key was always ignored by the other methods; with a logged warning unless ``warn`` is false (a
    run folder written by an older version, read back to compare it)."""
    say = log.warning if warn else log.debug
    sparse = raw.get("sparse")
    if not isinstance(sparse, dict) or not set(sparse) & set(LEGACY_METHOD_KEYS):
        return raw
    method = raw.get("method") if isinstance(raw.get("method"), dict) else {}
    name = method.get("name", MethodConfig.model_fields["name"].default)
    try:
        accepted = set(registries.methods().get(name).Params.model_fields)
    except Exception:  # an unknown method is reported by the field check
        accepted = set()
    params = dict(method.get("params") or {}) if isinstance(method.get("params") or {}, dict) else None
    sparse = dict(sparse)
    for old, new in LEGACY_METHOD_KEYS.items():
        if old not in sparse:
            continue
        value = sparse.pop(old)
        if new in accepted and params is not None:
            overridden = new in params
            params.setdefault(new, value)
            say(
                "sparse.%s is deprecated: use method.params.%s (method %r)%s",
                old,
                new,
                name,
                "; method.params wins" if overridden else "",
            )
        else:
            say("sparse.%s is deprecated and ignored: method %r does not take it", old, name)
    out = {**raw, "sparse": sparse}
    if params is not None:
        out["method"] = {**method, "params": params}
    return out


class RunConfig(_Section):
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)
    sparse: SparseConfig = Field(default_factory=SparseConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    safecompress: SafeCompressConfig = Field(default_factory=SafeCompressConfig)
    defence: DefenceConfig = Field(default_factory=DefenceConfig)
    quantize: Literal["none", "fp16", "int8"] = Field(
        "none",
        description="post-training quantization of the weights (dense or sparse); evaluated and audited as quantized",
    )
    baseline: MethodName | None = Field(
        None, description="also run this method with the same config into OUT/baseline-<name> and report both"
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_method_keys(cls, data: Any) -> Any:
        return _migrate_legacy_method_keys(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _method_fits(self) -> "RunConfig":
        try:
            cls = registries.methods().get(self.method.name)
        except Exception:  # an unknown name is reported by the field check
            return self
        problems = [*cls.config_problems(self), *cls.structure_problems(self)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


PRESETS = ("default", "ci", "cpu", "full")


def preset_dict(name: str) -> dict[str, Any]:
    """The overrides a preset applies (packaged YAML files)."""
    if name not in PRESETS:
        hint = closest(name, list(PRESETS))
        raise ConfigError(
            f"unknown preset {name!r}"
            + (f"; did you mean {hint!r}?" if hint else "")
            + f" Presets: {', '.join(PRESETS)}"
        )
    text = resources.files("safecompress.presets").joinpath(f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(item: str) -> dict[str, Any]:
    """``"model.width=0.5"`` -> ``{"model": {"width": 0.5}}`` (the value is parsed as YAML)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r} must look like section.key=value, e.g. --set model.width=0.5")
    from .safeyaml import YamlLimitError
    from .safeyaml import load as load_yaml

    try:
        value = load_yaml(raw) if raw.strip() else None
    except YamlLimitError as exc:
        raise ConfigError(f"override {item!r} is refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {item!r}: the value is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    nested: dict[str, Any] = value
    for part in reversed(key.split(".")):
        nested = {part: nested}
    return nested


MAX_CONFIG_BYTES = 1 << 20  # a config or suite file is a few KB; anything above 1 MB is refused unread


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in the YAML file ``path``: at most 1 MB of UTF-8, no alias bombs (safeyaml.load)."""
    from .fileio import read_limited
    from .safeyaml import YamlLimitError
    from .safeyaml import load as load_yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = read_limited(path, MAX_CONFIG_BYTES, "config file")
        text = raw.decode("utf-8-sig")
    except ValueError as exc:  # too large, not a regular file, or not UTF-8
        why = f"is not UTF-8 text ({exc.reason} at byte {exc.start})" if isinstance(exc, UnicodeDecodeError) else ""
        raise ConfigError(f"{path} {why}; save it as UTF-8" if why else str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        data = load_yaml(text)
    except YamlLimitError as exc:
        raise ConfigError(f"{path} is refused: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} must hold a mapping of sections (data:, model:, train:, ...), got {type(data).__name__}"
        )
    return data


def _section_class(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    cls: type[BaseModel] = RunConfig
    for part in loc:
        field = cls.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        cls = field.annotation
    return cls


def _describe(err: dict[str, Any]) -> str:
    loc = tuple(err["loc"])
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        parent = _section_class(loc[:-1])
        valid = list(parent.model_fields) if parent else []
        hint = closest(str(loc[-1]), valid)
        prefix = ".".join(str(p) for p in loc[:-1])
        full = f"{prefix}.{hint}" if prefix and hint else hint
        suggestion = f"; did you mean {full!r}?" if hint else ""
        return f"{dotted}: unknown key{suggestion} Valid keys here: {', '.join(valid)}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    shown = "" if err["type"] in ("value_error", "missing") else f" (got {err.get('input')!r})"
    return f"{dotted}: {msg}{shown}"


def build_config(raw: dict[str, Any]) -> RunConfig:
    """Validate a merged dict; every problem is collected into one ConfigError."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([_describe(e) for e in exc.errors()]) from None


def load_config(
    config_file: str | Path | None = None,
    preset: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> RunConfig:
    raw: dict[str, Any] = {}
    if preset:
        raw = deep_merge(raw, preset_dict(preset))
    if config_file:
        raw = deep_merge(raw, read_yaml(config_file))
    for item in overrides:
        raw = deep_merge(raw, parse_override(item))
    return build_config(raw)


def dump_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
