"""Which attacks an outside audit can run, and why the others are skipped.

A model trained elsewhere comes without its training recipe unless the user gives one (``--recipe``, see
:mod:`.recipe`), and it may come as an opaque graph (ONNX, torch.export, TorchScript) whose layers are out
of reach:

* without a recipe, attacks that learn from reference models (``lira``, ``rmia``, ``nn``, ``top3``,
  ``shadow``, ``whitebox``) are skipped; the threshold attacks whose reference model only calibrates a
  decision threshold (``loss``, ``confidence``, ``entropy``, ``m_entropy``, ``label_only``, ``grad_norm``:
  ``needs_references == 1`` and simulatable) run without it — their AUC and TPRs do not depend on that
  threshold. With a recipe (and the population its references train on) they all run, calibrated;
* white-box attacks need a torch ``nn.Module`` (a safecompress model file or an in-memory module);
* reference-free attacks learn from known non-members instead (``calibrated``, ``inversion``, ``extraction``'s
  queries): they run only with a population (``needs_population``); ``evasion`` perturbs the queried records
  and needs none;
* attribute inference needs a sensitive attribute per record, which outside audit data does not carry;
* with precomputed outputs only (scores mode), only attacks that read nothing but the queried records'
  outputs run (the metric attacks and ``calibrated``).
"""

from __future__ import annotations

from ..attacks import ATTACKS
from ..attacks.calibrated import CalibratedAttack
from ..attacks.metric import MetricAttack
from ..config import DEFAULT_ATTACKS
from ..errors import ConfigError, SafeCompressError

NEEDS_REFERENCES = (
    "needs reference models: give the model's training recipe (--recipe CFG.yaml, a safecompress run config) "
    "and --population P.npz to train them"
)
NEEDS_SENSITIVE = "needs a sensitive attribute of every record (not supported for outside models yet)"
NEEDS_POPULATION = "needs known non-members to calibrate on: pass --population P.npz (records the model never saw)"
NEEDS_QUERIES = "queries the model beyond the given outputs: audit the model file itself with --model"


def default_attacks() -> list[str]:
    """Every attack a run audit runs by default, plus ``calibrated`` (reference-free, so it suits outside models)."""
    names = list(DEFAULT_ATTACKS)
    if "calibrated" not in names:
        names.insert(names.index("m_entropy") + 1 if "m_entropy" in names else 0, "calibrated")
    return names


def threshold_only(cls) -> bool:
    """Its one reference model only calibrates a threshold, so it runs (uncalibrated) without one."""
    return cls.needs_references == 1 and cls.simulatable


def skip_reason(
    name: str, *, model_format: str, white_box: bool, population: bool, scores_only: bool, references: bool = False
) -> str | None:
    cls = ATTACKS.get(name)
    if scores_only and not issubclass(cls, (MetricAttack, CalibratedAttack)):
        return NEEDS_QUERIES
    if cls.needs_sensitive:
        return NEEDS_SENSITIVE
    if cls.white_box and not white_box:
        return (
            f"needs white-box access to torch parameters and layers; the {model_format} model is opaque (audit a "
            "safecompress model file, or the torch nn.Module through safecompress.outside.audit)"
        )
    if cls.needs_references != 0 and not threshold_only(cls) and not references:
        return NEEDS_REFERENCES
    if cls.needs_population and not population:
        return NEEDS_POPULATION
    return None


def plan(
    names: list[str] | None,
    *,
    model_format: str,
    white_box: bool,
    population: bool,
    scores_only: bool = False,
    references: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """(attacks to run, {skipped attack: reason}); refuses unknown names and a plan with no membership attack.
    ``references``: reference models will be trained (a recipe and a population were given)."""
    names = list(dict.fromkeys(names or default_attacks()))
    problems = []
    for name in names:
        try:
            ATTACKS.get(name)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    run, skipped = [], {}
    for name in names:
        reason = skip_reason(
            name,
            model_format=model_format,
            white_box=white_box,
            population=population,
            scores_only=scores_only,
            references=references,
        )
        if reason is None:
            run.append(name)
        else:
            skipped[name] = reason
    if not any(ATTACKS.get(n).family == "membership" for n in run):
        why = "; ".join(f"{n}: {r}" for n, r in skipped.items())
        raise SafeCompressError(
            "no membership attack can run on this model"
            + (f" ({why})" if why else "")
            + "; ask for one that needs no reference model, e.g. --attacks loss,confidence,entropy"
        )
    return run, skipped
