"""The attack contract, the same for every family (docs/design.md §3).

An attack is *fitted* with what the attacker knows (:class:`~.knowledge.Knowledge`) and then
*evaluated* against a target view on queried records (:class:`~.knowledge.Queries`), returning an
:class:`~.result.AttackResult`: metrics, per-sample membership scores where the family has them,
details and a one-line summary.

What an attack can do and needs is said by class attributes, which the config validator, the auditor
and the SafeCompress loop read: ``family``, ``white_box`` (it receives a :class:`WhiteBoxTarget`),
``needs_references`` (reference/shadow models; -1 = all of the run's), ``needs_population`` (known
non-members to learn or calibrate on, which an attack without references needs unless it says otherwise),
``needs_sensitive`` (a dataset with a sensitive attribute) and ``simulatable`` (it can be fitted on the loop's
probe knowledge, which has no references; by default: when it needs none).

The base class is the membership family: a subclass implements ``score`` (one float per query, higher =
more likely a member) and, when it learns, ``fit``; ``evaluate`` turns the scores into the metrics of
:mod:`safecompress.metrics`. Other families override ``evaluate`` and ``summarize``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from .. import metrics
from ..errors import ConfigError
from ..params import Params, param_defaults, params_from_defaults, validate_params
from ..registry import Registry
from .knowledge import Knowledge, Queries
from .result import AttackResult
from .targets import BlackBoxTarget


def format_ci(ci) -> str:
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


class Attack:
    """Base class. ``__init__`` stores parameters; ``fit`` learns (state ends in ``_``); ``evaluate`` measures."""

    name = ""
    family = "membership"
    title: str | None = None  # the label of its summary line (default: its family)
    white_box = False
    needs_references = 1
    needs_sensitive = False
    simulatable: bool  # set on every subclass: by default ``needs_references == 0``
    needs_population: bool  # set on every subclass: by default ``needs_references == 0``
    citation = ""
    defaults: dict[str, Any] = {}  # the options this attack accepts (audit.attack_params), with defaults
    Params: type[Params] = Params  # the model they are validated by: derived from ``defaults`` unless declared

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if "references_needed" in cls.__dict__:  # the attribute's earlier name, still honoured for plugins
            cls.needs_references = cls.__dict__["references_needed"]
        if "defaults" in cls.__dict__ and "Params" not in cls.__dict__:
            cls.Params = params_from_defaults(cls.__dict__["defaults"], f"{cls.__name__}Params")
        elif "Params" in cls.__dict__:
            cls.defaults = param_defaults(cls.Params)
        # capabilities a class does not declare (itself or through a parent that declared them) follow its own
        # needs_references; a value a parent only inherited by that default is recomputed, not inherited
        computed = set()
        for attribute in ("simulatable", "needs_population"):
            declared = any(
                attribute in k.__dict__ and attribute not in k.__dict__.get("_computed_capabilities", ())
                for k in cls.__mro__
                if k is not Attack
            )
            if not declared:
                setattr(cls, attribute, cls.needs_references == 0)
                computed.add(attribute)
        cls._computed_capabilities = frozenset(computed)

    def __init__(self, **params: Any):
        self.params = validate_params(self.Params, params, f"attack {self.name!r}").model_dump()
        self.threshold_: float | None = None  # a member/non-member threshold picked on the attacker's own data

    def split_problems(self, sizes: Mapping[str, int]) -> list[str]:
        """What this attack, with its parameters, cannot do with the split's part sizes (part -> count; the
        attacker's ``population`` already without any canaries). Read before anything is trained: by the run's
        split check, and by the auditor with the population it is given."""
        return []

    def fit(self, knowledge: Knowledge) -> "Attack":
        return self

    def evaluate(self, target: BlackBoxTarget, queries: Queries) -> AttackResult:
        """Membership: score every query, then the metrics of the scored ones (the loop's or the audit's)."""
        s = np.asarray(self.score(target, queries.X, queries.y), dtype=np.float64)
        if s.shape != (len(queries.y),) or (not queries.in_loop and not np.isfinite(s).all()):
            raise RuntimeError(f"attack {self.name!r} returned invalid scores (shape {s.shape})")
        truth = queries.is_member
        if queries.in_loop:
            m = metrics.loop_metrics(s[: queries.n], truth, queries.low_fpr)
        else:
            m = metrics.membership_metrics(
                s[: queries.n],
                truth,
                attacker_threshold=self.threshold_,
                n_bootstrap=queries.n_bootstrap,
                seed=queries.seed,
            )
        details: dict[str, Any] = {"white_box": self.white_box}
        if getattr(self, "mode_", None):
            details["mode"] = self.mode_
        return AttackResult(m, s, details, self.summarize(m))

    def score(self, target: BlackBoxTarget, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def summarize(cls, entry: Mapping[str, Any]) -> str:
        """One line from this attack's metrics (its report.json entry)."""
        line = f"AUC {entry['auc']:.3f}{format_ci(entry.get('auc_ci'))}"
        tpr = (entry.get("tpr_at_fpr") or {}).get("0.01")
        return line + (f"; TPR at 1% FPR {metrics.format_rate(tpr, 4)}" if "tpr_at_fpr" in entry else "")

    # helpers for attacks that learn from reference models ------------------------------------
    def calibrate_threshold(self, knowledge: Knowledge, max_samples: int | None = None) -> None:
        """Set ``threshold_`` to the best balanced-accuracy threshold on a reference model's own
        members vs non-members from the population (at most ``max_samples`` of them, seeded)."""
        ((shadow, member),) = self.shadow_views(knowledge, 1)
        if max_samples is not None and max_samples < len(member):
            idx = np.random.default_rng(knowledge.seed).choice(len(member), max_samples, replace=False)
            t = torch.from_numpy(idx)
            scores = self.score(shadow, knowledge.population_X[t], knowledge.population_y[t])
            member = member[idx]
        else:  # the population tensors themselves: attacks calibrating on the same reference share its answers
            scores = self.score(shadow, knowledge.population_X, knowledge.population_y)
        _, self.threshold_ = metrics.best_balanced_accuracy(scores, member)

    def shadow_views(self, knowledge: Knowledge, count: int) -> list[tuple[BlackBoxTarget, np.ndarray]]:
        """(view of reference model k, its membership over the population) for the first ``count`` models.
        A black-box attack sees each reference as it is served (through an inference-time defence such as
        MemGuard, like the target); a white-box one holds its weights."""
        pool = knowledge.references
        if pool is None:
            raise ConfigError(f"attack {self.name!r} needs reference models, and its knowledge has none")
        pool.ensure(count)
        return [
            (knowledge.target_view(pool.models[k], white_box=self.white_box), pool.population_membership(k))
            for k in range(count)
        ]


ATTACKS: Registry[type[Attack]] = Registry("attack")
register_attack = ATTACKS.register  # class decorator: @register_attack("name")


def loop_result(auc: float, advantage: float, tpr: float | None = None) -> AttackResult:
    """The loop's measurement of an attack (what the SafeCompress objectives read)."""
    return AttackResult(
        {"auc": auc, "advantage": advantage, "tpr": tpr}, summary=f"AUC {auc:.3f}; advantage {advantage:.3f}"
    )


def balanced_indices(is_member: np.ndarray, rng: np.random.Generator, limit: int | None = None) -> np.ndarray:
    """Indices with as many members as non-members (at most ``limit`` each), shuffled."""
    ins, outs = np.flatnonzero(is_member), np.flatnonzero(~is_member)
    k = min(len(ins), len(outs), limit or len(is_member))
    idx = np.concatenate([rng.choice(ins, k, replace=False), rng.choice(outs, k, replace=False)])
    return rng.permutation(idx)
