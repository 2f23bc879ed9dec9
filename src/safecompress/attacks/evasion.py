"""``evasion``: adversarial examples — how much accuracy the model keeps against small, worst-case input
perturbations (white-box PGD: Madry et al., ICLR 2018; Carlini & Wagner, S&P 2017 for the evaluation habits).

For every budget ε of ``eps_linf`` (‖δ‖∞ ≤ ε) and of ``eps_l2`` (‖δ‖₂ ≤ ε), in the inputs' own units
(images are in [0, 1], so 8/255 ≈ 0.031 is the usual L∞ budget), projected gradient ascent on the
network's ``objective`` (white-box: it needs input gradients, so it reads the weights under any
inference-time output defence) takes ``steps`` steps of ``step_size``·ε (``auto``: 2.5/steps, Madry et
al.'s) from a random start in the ball (``random_start``), L∞ steps along the gradient's sign, L2 along
its normalised direction, each followed by the projection onto the ball and, with ``clip``, onto the
data's value range (``auto``: images only; their range is that of the attacker's population and the
queries, [0, 1] for the image datasets here). Each record keeps the iterate of highest objective. Robust
accuracy is the served model's accuracy on the perturbed records (the answers a user of the deployed
model gets).

The objective is Carlini & Wagner's margin max_{j≠y} z_j − z_y by default (``margin``), or the
cross-entropy (``ce``, ascended through its log-odds form, which has the same steps without the
cross-entropy's float32 saturation on records the model is very sure of). On a linear model the margin
comes within a point of the exact worst case where the cross-entropy stays 5 points above it (5 classes,
L∞; tested), so the margin is the default: a robust accuracy is only an upper bound, the tighter the better.

Measured on (a seeded subset of at most ``max_queries`` of) the audit records the audit gives it: clean and
robust accuracy per budget, overall and for members and non-members apart, and the attack's own sanity
checks, recorded per budget and failing loudly (a warning, and "CHECK FAILED" in the summary):

* ``loss_increased`` — the mean of the attack's objective on the perturbed records is above its clean mean
  (the cross-entropy is reported beside it);
* ``within_budget`` — every perturbation's norm is within its ε (up to float rounding);
* ``in_range`` — every perturbed input is within the valid range (when clipping);
* ``robust_le_clean`` — robust accuracy ≤ clean accuracy.

Text (token ids) has no continuous neighbourhood to perturb: on a text dataset the attack reports itself
skipped. Not a simulated attacker of the SafeCompress loop.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import field_validator, model_validator

from ..params import Flag, Params
from ..train import eval_mode, predict_logits
from .base import Attack, register_attack
from .knowledge import Knowledge, Queries
from .result import AttackResult
from .targets import WhiteBoxTarget

log = logging.getLogger(__name__)

NORMS = ("linf", "l2")


def _norms(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    scale = (eps / _norms(delta, "l2").clamp_min(1e-12)).clamp(max=1.0)
    return delta * scale.view(-1, *([1] * (delta.dim() - 1)))


def _random_start(x: torch.Tensor, eps: float, norm: str, gen: torch.Generator) -> torch.Tensor:
    if norm == "linf":
        return (torch.rand(x.shape, generator=gen) * 2 - 1) * eps
    d = torch.randn(x.shape, generator=gen)
    radius = torch.rand(len(x), generator=gen) ** (1.0 / x[0].numel())  # uniform in the ball
    return (
        d
        / _norms(d, "l2").clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
        * (eps * radius).view(-1, *([1] * (x.dim() - 1)))
    )


def log_odds(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L = log Σ_{j≠y} exp(z_j) − z_y, per record: cross-entropy is softplus(L), so ascending L takes the
    cross-entropy's steps (their per-record gradients differ by the positive factor sigmoid(L), which the sign
    and the normalised step ignore) without its saturation: on a record the model is very sure of, the
    cross-entropy's gradient rounds to a wrong direction (1 − p_y = 0 in float32) or to zero, L's does not."""
    others = z.scatter(1, y[:, None], float("-inf"))
    return torch.logsumexp(others, 1) - z.gather(1, y[:, None])[:, 0]


def margin(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Carlini & Wagner's margin, max_{j≠y} z_j − z_y, per record (> 0: misclassified)."""
    others = z.scatter(1, y[:, None], float("-inf"))
    return others.amax(1) - z.gather(1, y[:, None])[:, 0]


OBJECTIVES = {"margin": margin, "ce": log_odds}


def pgd(
    model: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str,
    steps: int,
    step_size: float | None = None,
    random_start: bool = True,
    clip: tuple[float, float] | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
    objective: str = "margin",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected gradient ascent on ``objective`` of ``model`` (``margin``: :func:`margin`; ``ce``: the
    cross-entropy, through :func:`log_odds`) within the ``norm`` ball of radius ``eps`` around every row of ``X``
    (and within ``clip`` = (low, high) when given). Returns (the perturbed inputs, on the CPU, and their
    per-record objective); each record keeps its highest-objective iterate. Only input gradients are taken:
    the model's parameters and their ``.grad`` are left untouched; the model runs in eval mode."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {tuple(OBJECTIVES)}, got {objective!r}")
    f = OBJECTIVES[objective]
    alpha = 2.5 * eps / steps if step_size is None else float(step_size)
    device = torch.device(device)
    gen = torch.Generator().manual_seed(int(seed))
    out_x, out_loss = [], []
    with eval_mode(model), torch.enable_grad():
        for i in range(0, len(X), batch_size):
            x0 = X[i : i + batch_size].float()
            delta = _random_start(x0, eps, norm, gen) if random_start else torch.zeros_like(x0)
            x0, t, delta = x0.to(device), y[i : i + batch_size].to(device), delta.to(device)
            if clip is not None:
                delta = (x0 + delta).clamp(*clip) - x0
            best = delta.clone()
            best_loss = torch.full((len(x0),), -math.inf, device=device)
            for step in range(steps + 1):
                delta.requires_grad_(True)
                loss = f(model(x0 + delta).float(), t)
                with torch.no_grad():
                    better = loss > best_loss
                    best[better], best_loss[better] = delta[better], loss[better]
                if step == steps:
                    break
                (g,) = torch.autograd.grad(loss.sum(), delta)
                with torch.no_grad():
                    if norm == "linf":
                        delta = delta + alpha * g.sign()
                    else:
                        unit = g / _norms(g, "l2").clamp_min(1e-12).view(-1, *([1] * (g.dim() - 1)))
                        delta = delta + alpha * unit
                    delta = _project(delta, eps, norm)
                    if clip is not None:  # x0 lies in the range, so clipping only shrinks δ: it stays in the ball
                        delta = (x0 + delta).clamp(*clip) - x0
            out_x.append((x0 + best).detach().cpu())
            out_loss.append(best_loss.detach().cpu())
    return torch.cat(out_x), torch.cat(out_loss)


def sanity_checks(
    clean_loss: float,
    adv_loss: float,
    max_norm: float,
    eps: float,
    clean_accuracy: float,
    robust_accuracy: float,
    in_range: bool | None = None,
) -> dict[str, bool]:
    """The checks every PGD budget must pass (False = the attack, not the model, is broken)."""
    checks = {
        "loss_increased": bool(adv_loss > clean_loss),
        "within_budget": bool(max_norm <= eps * (1 + 1e-5) + 1e-6),
        "robust_le_clean": bool(robust_accuracy <= clean_accuracy + 1e-12),
    }
    if in_range is not None:
        checks["in_range"] = bool(in_range)
    return checks


def _eps_list(v: list[float]) -> list[float]:
    bad = [e for e in v if not (isinstance(e, (int, float)) and math.isfinite(e) and e > 0)]
    if bad:
        raise ValueError(
            f"are perturbation radii in the inputs' units and must be finite numbers > 0, got {bad} "
            "(images are in [0, 1]: e.g. [0.0078, 0.0157, 0.0314] for 2, 4, 8 / 255)"
        )
    return sorted(set(float(e) for e in v))


@register_attack("evasion")
class Evasion(Attack):
    family = "evasion"
    title = "evasion (adversarial examples)"
    white_box = True
    needs_references = 0
    needs_population = False  # it perturbs the queried records; known non-members give it nothing
    simulatable = False
    citation = "Madry et al., ICLR 2018 (PGD); Carlini & Wagner, S&P 2017"

    class Params(Params):
        eps_linf: list[float] = [1 / 255, 2 / 255, 4 / 255, 8 / 255]
        eps_l2: list[float] = [0.1, 0.25, 0.5, 1.0]
        steps: int = 20
        step_size: Literal["auto"] | float = "auto"  # relative: each step moves step_size·ε (auto: 2.5/steps)
        random_start: Flag = True
        objective: Literal["margin", "ce"] = "margin"
        clip: Literal["auto", "none", "range"] = "auto"
        max_queries: int = 2000
        batch_size: int = 512
        seed: int = 0

        @field_validator("eps_linf", "eps_l2")
        @classmethod
        def _radii(cls, v):
            return _eps_list(v)

        @field_validator("steps", "max_queries", "batch_size")
        @classmethod
        def _at_least_one(cls, v):
            if v < 1:
                raise ValueError(f"must be ≥ 1, got {v!r}")
            return v

        @field_validator("step_size")
        @classmethod
        def _step(cls, v):
            if v != "auto" and not (math.isfinite(v) and v > 0):
                raise ValueError(f"is a fraction of ε per step and must be a finite number > 0 (or 'auto'), got {v!r}")
            return v

        @model_validator(mode="after")
        def _some_budget(self):
            if not self.eps_linf and not self.eps_l2:
                raise ValueError("eps_linf and eps_l2 are both empty: give at least one budget")
            return self

    SKIPPED_TEXT = "text inputs are token ids, which cannot be perturbed continuously"

    def fit(self, knowledge: Knowledge) -> "Attack":
        """Nothing to learn: the attacker's records only give it the data's value range."""
        X, _, _ = knowledge.records()
        self.kind_, self.seed_ = knowledge.kind, knowledge.seed
        self.range_ = (float(X.min()), float(X.max())) if len(X) and self.kind_ != "text" else None
        return self

    def clip_range(self, X: torch.Tensor) -> tuple[float, float] | None:
        mode = self.params["clip"]
        if mode == "none" or (mode == "auto" and self.kind_ != "image"):
            return None
        lo, hi = float(X.min()), float(X.max())
        if self.range_ is not None:
            lo, hi = min(lo, self.range_[0]), max(hi, self.range_[1])
        return lo, hi

    def evaluate(self, target: WhiteBoxTarget, queries: Queries) -> AttackResult:
        if self.kind_ == "text":
            return AttackResult({"skipped": self.SKIPPED_TEXT}, summary=self.summarize({"skipped": self.SKIPPED_TEXT}))
        m = self.measure(target, queries)
        if not m["checks_passed"]:
            log.warning("evasion: sanity checks failed: %s", ", ".join(m["failed_checks"]))
        return AttackResult(m, summary=self.summarize(m))

    def measure(self, target: WhiteBoxTarget, queries: Queries) -> dict[str, Any]:
        p = self.params
        rng = np.random.default_rng(np.random.SeedSequence([self.seed_, int(p["seed"]), 0xE5]))
        rows = np.arange(queries.n)
        if len(rows) > int(p["max_queries"]):
            rows = np.sort(rng.choice(rows, int(p["max_queries"]), replace=False))
        t = torch.from_numpy(rows)
        X, y, member = queries.X[t].float(), queries.y[t], queries.is_member[rows]
        clip = self.clip_range(X)
        net, device = target.module, target.device
        clean_right = (target.served.logits(X).argmax(1) == y).numpy()
        clean_logits = predict_logits(net, X, device)
        objective = OBJECTIVES[p["objective"]]
        clean_obj = float(objective(clean_logits, y).mean())
        clean_loss = float(F.cross_entropy(clean_logits, y).item())
        result: dict[str, Any] = {
            "records": int(len(rows)),
            "clean_accuracy": _rate(clean_right),
            "clean_accuracy_members": _rate(clean_right[member]),
            "clean_accuracy_nonmembers": _rate(clean_right[~member]),
            "objective": p["objective"],
            "clean_objective": round(clean_obj, 4),
            "clean_loss": round(clean_loss, 4),
            "steps": int(p["steps"]),
            "random_start": bool(p["random_start"]),
            "clip": list(clip) if clip else None,
        }
        failed: list[str] = []
        for norm in NORMS:
            points = []
            for k, eps in enumerate(p[f"eps_{norm}"]):
                step = None if p["step_size"] == "auto" else float(p["step_size"]) * eps
                seed = int(rng.integers(2**31)) + k
                x_adv, obj = pgd(
                    net, X, y, eps, norm, int(p["steps"]), step, p["random_start"], clip, seed, device,
                    int(p["batch_size"]), p["objective"],
                )  # fmt: skip
                loss = float(F.cross_entropy(predict_logits(net, x_adv, device), y).item())
                # a record counts as robust only if its clean answer was right too (with a random start the clean
                # point is not among the iterates, so a wrong record could otherwise come out right)
                right = (target.served.logits(x_adv).argmax(1) == y).numpy() & clean_right
                max_norm = float(_norms(x_adv - X, norm).max())
                in_range = None if clip is None else bool((x_adv >= clip[0]).all() and (x_adv <= clip[1]).all())
                robust = _rate(right)
                checks = sanity_checks(
                    clean_obj, float(obj.mean()), max_norm, eps, result["clean_accuracy"], robust, in_range
                )
                failed += [f"{norm} ε={eps:g}: {name}" for name, ok in checks.items() if not ok]
                points.append(
                    {
                        "eps": eps,
                        "robust_accuracy": robust,
                        "robust_accuracy_members": _rate(right[member]),
                        "robust_accuracy_nonmembers": _rate(right[~member]),
                        "objective": round(float(obj.mean()), 4),
                        "loss": round(loss, 4),
                        "max_norm": round(max_norm, 6),
                        "checks": checks,
                    }
                )
            result[norm] = points
        result["checks_passed"] = not failed
        result["failed_checks"] = failed
        # the headline: robust accuracy at the largest budget of each norm
        result["robust_accuracy"] = {n: result[n][-1]["robust_accuracy"] for n in NORMS if result[n]}
        result["eps"] = {n: result[n][-1]["eps"] for n in NORMS if result[n]}
        return result

    @classmethod
    def summarize(cls, entry: Mapping[str, Any]) -> str:
        if entry.get("skipped") is not None:
            return "n/a: " + entry["skipped"]
        names = {"linf": "L∞", "l2": "L2"}
        parts = [
            f"robust accuracy {acc:.3f} at {names[n]} ε={entry['eps'][n]:.3g}"
            for n, acc in entry["robust_accuracy"].items()
        ]
        line = "; ".join(parts) + f" (clean {entry['clean_accuracy']:.3f})"
        if not entry.get("checks_passed", True):
            line += "; CHECK FAILED: " + ", ".join(entry.get("failed_checks", []))
        return line


def _rate(right: np.ndarray) -> float | None:
    return round(float(right.mean()), 4) if len(right) else None
