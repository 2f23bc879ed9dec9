"""``extraction``: model extraction — copy the served model's behaviour into a surrogate trained on its answers
(Tramèr et al., USENIX Security 2016; Orekondy et al., "Knockoff Nets", CVPR 2019).

The attacker holds records it knows are not the target's training data (the population) and a query
budget. It queries the target as served (after any inference-time defence) on the first ``budget`` records
of one seeded order of its population — so the budgets are nested: more queries, the same attacker — and
trains a surrogate from the model zoo on the answers, in two modes:

* ``labels`` — the served argmax only (cross-entropy on hard labels: what a label-only API gives);
* ``probabilities`` — the full served probability vector (soft-label distillation, cross-entropy against
  the target's distribution).

The surrogate (``model``) is the zoo's small network for the data kind (``auto``: ``mlp`` on tables,
``cnn`` on images, ``fasttext`` on text) at ``width``, or any zoo name. It trains with Adam for ``epochs``
passes over its queries, and at least ``min_steps`` optimizer steps (so a small budget still converges).

Measured on the audit records the audit gives it (members and non-members; canaries left out), which the
attacker never queried to train:

* ``fidelity`` — the fraction of records on which the surrogate's argmax equals the served model's
  (Jagielski et al., USENIX Security 2020, call this label agreement);
* ``accuracy`` — the surrogate's accuracy on the records' true labels (beside the target's own).

Per mode one point per budget; ``budget 0`` is the untrained surrogate (its fidelity is what a network
that learned nothing agrees with the target by chance, ≈ 1 / classes when the target's answers are
balanced), and ``constant_fidelity`` that of always answering the target's most frequent answer on the
attacker's queries. The headline is the fidelity at the largest budget, probabilities mode, with a
percentile bootstrap interval over the audit records.

Budgets: ``auto`` is 250, 500, 1000, 2000 up to the attacker's population (the whole population when it
is smaller than 250); a given list must fit in the population: a budget above it is a configuration error
naming the population's size (checked with the split, before anything trains), never a silent cap.

Not a simulated attacker of the SafeCompress loop: it trains 2 × budgets networks (see ``bench/beyond_curves.py``
for what it costs).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import field_validator

from ..models import MODELS, ModelSpec, build_model, model_entry
from ..params import Params
from ..train import predict_logits
from .base import Attack, format_ci, register_attack
from .knowledge import Knowledge, Queries
from .result import AttackResult
from .targets import BlackBoxTarget

log = logging.getLogger(__name__)

AUTO_BUDGETS = (250, 500, 1000, 2000)
MODES = ("labels", "probabilities")
SURROGATE_BY_KIND = {"tabular": "mlp", "image": "cnn", "text": "fasttext"}


def fidelity(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Label agreement of two models' outputs on the same records: the fraction whose argmax is equal
    (outputs are (n, classes) logits or probabilities; 1-D arrays are taken as predicted labels)."""
    pa, pb = (np.asarray(x.argmax(1) if x.ndim == 2 else x) for x in (a, b))
    if pa.shape != pb.shape or pa.size == 0:
        raise ValueError(f"fidelity needs two non-empty outputs on the same records, got {pa.shape} and {pb.shape}")
    return float((pa == pb).mean())


def auto_budgets(population: int) -> list[int]:
    """The default budgets: 250, 500, 1000, 2000 up to ``population`` (or the whole population if smaller)."""
    return [b for b in AUTO_BUDGETS if b <= population] or [population]


def train_surrogate(
    model: torch.nn.Module,
    X: torch.Tensor,
    answers: torch.Tensor,
    mode: str,
    seed: int,
    epochs: int,
    min_steps: int,
    lr: float,
    batch_size: int,
    device: torch.device,
) -> torch.nn.Module:
    """Train ``model`` on the target's ``answers`` (probabilities, (n, classes)) for queries ``X``: hard labels
    (``labels``) or the distribution itself (``probabilities``). Seeded batch order; Adam."""
    target = answers.argmax(1) if mode == "labels" else answers
    per_epoch = math.ceil(len(X) / batch_size)
    steps = max(epochs * per_epoch, min_steps)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    order = torch.empty(0, dtype=torch.long)
    for step in range(steps):
        if step % per_epoch == 0:
            order = torch.randperm(len(X), generator=gen)
        idx = order[(step % per_epoch) * batch_size : (step % per_epoch + 1) * batch_size]
        if len(idx) < 2 <= len(X):  # a one-record tail batch: BatchNorm cannot train on it
            continue
        out = model(X[idx].to(device))
        t = target[idx].to(device)
        loss = F.cross_entropy(out, t) if mode == "labels" else -(t * F.log_softmax(out, 1)).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@register_attack("extraction")
class ModelExtraction(Attack):
    family = "extraction"
    title = "model extraction"
    white_box = False
    needs_references = 0
    simulatable = False
    citation = "Tramèr et al., USENIX Security 2016; Orekondy et al., CVPR 2019"

    class Params(Params):
        budgets: Literal["auto"] | list[int] = "auto"
        modes: list[Literal["labels", "probabilities"]] = list(MODES)
        model: str = "auto"
        width: float = 0.5
        epochs: int = 30
        min_steps: int = 300
        lr: float = 1e-3
        batch_size: int = 64

        @field_validator("budgets")
        @classmethod
        def _budgets(cls, v):
            if isinstance(v, list):
                if not v:
                    raise ValueError("must list at least one query budget (or be 'auto')")
                bad = [b for b in v if b < 2]
                if bad:
                    raise ValueError(
                        f"are numbers of queries and must be ≥ 2 (a surrogate needs two answers), got {bad}"
                    )
                return sorted(set(v))
            return v

        @field_validator("modes")
        @classmethod
        def _modes(cls, v):
            if not v:
                raise ValueError("must name at least one of labels, probabilities")
            return [m for m in MODES if m in v]

        @field_validator("model")
        @classmethod
        def _model(cls, v):
            if v != "auto" and v not in MODELS:
                # no 'module:factory' paths: a run folder someone sends would import their code on `audit RUN`
                # (a model of your own becomes a zoo name as a model plugin, `safecompress list models`)
                raise ValueError(
                    f"{v!r} is not a model of the zoo; use 'auto' or one of {', '.join(MODELS.names())} "
                    "(`safecompress list models`; register a model of your own as a plugin)"
                )
            return v

        @field_validator("width", "lr")
        @classmethod
        def _positive(cls, v):
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"must be a finite number > 0, got {v!r}")
            return v

        @field_validator("epochs", "min_steps")
        @classmethod
        def _count(cls, v):
            if v < 0:
                raise ValueError(f"must be ≥ 0, got {v!r}")
            return v

        @field_validator("batch_size")
        @classmethod
        def _batch(cls, v):
            if v < 1:
                raise ValueError(f"must be ≥ 1, got {v!r}")
            return v

    # -- the contract -----------------------------------------------------------------------------------
    def split_problems(self, sizes: Mapping[str, int]) -> list[str]:
        budgets, n = self.params["budgets"], int(sizes.get("population", 0))
        if n < 2:
            return [
                f"attack 'extraction' queries the attacker's population, which holds {n} record(s) and a surrogate "
                "needs at least 2; enlarge data.split.population"
            ]
        if budgets == "auto" or max(budgets) <= n:
            return []
        return [
            f"attack 'extraction': query budget {max(budgets)} is larger than the attacker's population of {n} "
            f"records (the only records it may query); use budgets ≤ {n} in audit.attack_params.extraction.budgets "
            "(or 'auto'), or enlarge data.split.population"
        ]

    def budgets(self, population: int) -> list[int]:
        b = self.params["budgets"]
        return auto_budgets(population) if b == "auto" else list(b)

    def fit(self, knowledge: Knowledge) -> "Attack":
        """Nothing to learn before the target answers: keep the population in one seeded order and check the
        budgets against it."""
        from ..errors import ConfigError

        X, y = knowledge.population_X, knowledge.population_y
        problems = self.split_problems({"population": len(y)})
        if problems:
            raise ConfigError(problems)
        self.kind_, self.seed_, self.n_classes_, self.device_ = (
            knowledge.kind,
            knowledge.seed,
            knowledge.n_classes,
            knowledge.device,
        )
        order = torch.from_numpy(
            np.random.default_rng(np.random.SeedSequence([knowledge.seed, 0xE7])).permutation(len(y))
        )
        self.pool_ = X[order]
        self.budgets_ = self.budgets(len(y))
        name = self.params["model"]
        self.surrogate_name_ = SURROGATE_BY_KIND.get(self.kind_, "mlp") if name == "auto" else name
        entry = model_entry(self.surrogate_name_)
        if self.kind_ not in entry.kinds:
            raise ConfigError(
                f"attack 'extraction': surrogate model {self.surrogate_name_!r} takes {', '.join(entry.kinds)} data, "
                f"not {self.kind_}; set audit.attack_params.extraction.model to one that does (or 'auto')"
            )
        return self

    def surrogate(self, input_shape: tuple[int, ...]) -> torch.nn.Module:
        """A fresh surrogate, the same initialisation for every budget and mode (budget 0 is this network)."""
        vocab = int(self.pool_.max().item()) + 1 if self.kind_ == "text" else 0
        spec = ModelSpec(
            self.surrogate_name_, input_shape, self.n_classes_, float(self.params["width"]), vocab_size=vocab
        )
        return build_model(spec, self.seed_ + 0xE8)

    def evaluate(self, target: BlackBoxTarget, queries: Queries) -> AttackResult:
        m = self.measure(target, queries)
        return AttackResult(m, summary=self.summarize(m))

    def measure(self, target: BlackBoxTarget, queries: Queries) -> dict[str, Any]:
        p = self.params
        Xq, yq = queries.X[: queries.n], queries.y[: queries.n]  # the audit records (canaries left out)
        served_q = target.logits(Xq)
        shape = tuple(self.pool_.shape[1:])
        start = self.surrogate(shape)
        untrained = predict_logits(start, Xq, self.device_)
        largest = self.budgets_[-1]
        answers = target.probs(self.pool_[:largest])  # one query per record; each budget uses a prefix
        most = int(answers.argmax(1).bincount(minlength=self.n_classes_).argmax())
        curves: dict[str, list[dict[str, Any]]] = {}
        final: dict[str, torch.Tensor] = {}
        for mode in p["modes"]:
            rows = [{"budget": 0, **self._point(untrained, served_q, yq)}]
            for k, b in enumerate(self.budgets_):
                net = self.surrogate(shape)
                train_surrogate(
                    net,
                    self.pool_[:b],
                    answers[:b],
                    mode,
                    self.seed_ + 101 * k + (7 if mode == "labels" else 0),
                    int(p["epochs"]),
                    int(p["min_steps"]),
                    float(p["lr"]),
                    int(p["batch_size"]),
                    self.device_,
                )
                out = predict_logits(net, Xq, self.device_)
                rows.append({"budget": b, **self._point(out, served_q, yq)})
                final[mode] = out
                log.debug("extraction %s budget %d: fidelity %.4f", mode, b, rows[-1]["fidelity"])
            curves[mode] = rows
        mode = "probabilities" if "probabilities" in final else next(iter(final))
        head = final[mode]
        agree = (head.argmax(1) == served_q.argmax(1)).numpy()
        member = queries.is_member
        return {
            "surrogate": self.surrogate_name_,
            "width": float(p["width"]),
            "population": int(len(self.pool_)),
            "budgets": list(self.budgets_),
            "budgets_from": "auto" if p["budgets"] == "auto" else "given",
            "records": int(len(yq)),
            "target_accuracy": round(float((served_q.argmax(1) == yq).float().mean()), 4),
            "constant_fidelity": round(float((served_q.argmax(1) == most).float().mean()), 4),
            "curves": curves,
            "mode": mode,
            "budget": largest,
            "fidelity": round(float(agree.mean()), 4),
            "fidelity_ci": _bootstrap_mean(agree, queries.n_bootstrap, queries.seed),
            "fidelity_members": round(float(agree[member].mean()), 4) if member.any() else None,
            "fidelity_nonmembers": round(float(agree[~member].mean()), 4) if (~member).any() else None,
            "accuracy": curves[mode][-1]["accuracy"],
        }

    @staticmethod
    def _point(out: torch.Tensor, served: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return {
            "fidelity": round(fidelity(out, served), 4),
            "accuracy": round(float((out.argmax(1) == y).float().mean()), 4),
        }

    @classmethod
    def summarize(cls, entry: Mapping[str, Any]) -> str:
        if entry.get("skipped") is not None:
            return "n/a: " + entry["skipped"]
        line = (
            f"fidelity {entry['fidelity']:.3f}{format_ci(entry.get('fidelity_ci'))} with {entry['budget']} queries "
            f"({entry['mode']})"
        )
        other = [m for m in entry.get("curves", {}) if m != entry["mode"]]
        if other:
            line += f", {entry['curves'][other[0]][-1]['fidelity']:.3f} ({other[0]})"
        return line + f"; surrogate accuracy {entry['accuracy']:.3f} vs the target's {entry['target_accuracy']:.3f}"


def _bootstrap_mean(x: np.ndarray, n: int, seed: int) -> list[float] | None:
    """95 % percentile bootstrap interval of the mean of ``x``."""
    if n <= 0 or len(x) < 2:
        return None
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xE9]))
    means = np.array([x[rng.integers(0, len(x), len(x))].mean() for _ in range(n)])
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]
