"""HAMP (Chen & Pattabiraman, "Overconfidence is a Dangerous Thing: Mitigating Membership Inference
Attacks by Enforcing Less Confident Prediction", NDSS 2024): train the model to be less confident, and
serve outputs that look like the model's outputs on random data.

Three parts, each a parameter:

1. **High-entropy soft labels** (``entropy_threshold`` γ). The model is trained on targets that put
   probability ``p`` on the true class and ``(1 − p)/(C − 1)`` on every other class, with ``p`` solved
   (by bisection) so that the target's entropy is γ·log C, a fraction γ of the largest possible entropy.
   For γ < 1 the true class stays on top (``p > 1/C``).
2. **Entropy regulariser** (``alpha`` α). The loss is ``CE(soft target, softmax(z)) − α·H(softmax(z))``,
   which rewards less confident predictions on top of the soft labels. The default α = 0.001 is at the
   small end of the strengths the paper uses; the soft labels already do most of the flattening, and a
   large α can push predictions towards uniform and cost accuracy. α = 0 turns the regulariser off.
3. **Output remapping** (``remap``). At deployment the defender draws one random input (seeded),
   uniformly within the per-feature range of its training inputs (the input domain), and sorts the
   model's softmax on it into a fixed reference vector ``r₁ ≥ r₂ ≥ … ≥ r_C``. For every query the
   served output gives the class the model ranks k-th the score ``r_k``: the predicted label (and so
   accuracy) is unchanged, but the confidence values are those of a random input, identical for
   members and non-members. The wrapper returns ``log r`` placed by rank as logits (their softmax is
   the remapped vector). It is an inference-time wrapper like MemGuard: white-box attacks, which hold
   the weights, unwrap it (:func:`~safecompress.defences.base.unwrap`) and see parts 1–2 only;
   label-only attacks are unaffected by it.

The trainer always adds the hard-label cross-entropy, so the callback's extra term is
``CE(soft) − CE(hard) − α·H``: the total is exactly HAMP's loss. (This module is our implementation of
the paper's idea; the paper draws random samples per query in its own code, we draw one fixed
reference so the served model is deterministic and a re-audit rebuilds the same outputs.)
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..params import Flag, NonNegative, Params
from ..train import Callback
from .base import Defence, Deployed, register_defence

log = logging.getLogger(__name__)


def soft_label_entropy(p_true: float, n_classes: int) -> float:
    """Entropy (nats) of the target with ``p_true`` on one class and the rest spread uniformly."""
    rest = (1.0 - p_true) / (n_classes - 1)
    h = 0.0
    if p_true > 0:
        h -= p_true * math.log(p_true)
    if rest > 0:
        h -= (1.0 - p_true) * math.log(rest)
    return h


def true_class_probability(entropy_threshold: float, n_classes: int, iters: int = 200) -> float:
    """The ``p_true`` in [1/C, 1] whose soft label has entropy ``entropy_threshold``·log C (bisection).

    On [1/C, 1] the entropy falls monotonically from log C to 0, so the root is unique.
    """
    if n_classes < 2:
        raise ConfigError(f"defence 'hamp' needs at least 2 classes, got {n_classes}")
    if not 0 <= entropy_threshold <= 1:
        raise ConfigError(f"defence 'hamp': entropy_threshold must lie in [0, 1], got {entropy_threshold!r}")
    target = entropy_threshold * math.log(n_classes)
    lo, hi = 1.0 / n_classes, 1.0  # H(lo) = log C ≥ target ≥ 0 = H(hi)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if soft_label_entropy(mid, n_classes) > target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def soft_labels(y: torch.Tensor, n_classes: int, p_true: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Targets with ``p_true`` on each row's class and ``(1 − p_true)/(C − 1)`` elsewhere."""
    rest = (1.0 - p_true) / (n_classes - 1)
    out = torch.full((len(y), n_classes), rest, dtype=dtype, device=y.device)
    out.scatter_(1, y[:, None], p_true)
    return out


class _HampLoss(Callback):
    def __init__(self, n_classes: int, p_true: float, alpha: float):
        self.n_classes, self.p_true, self.alpha = n_classes, p_true, alpha

    def hamp_loss(self, logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """CE against the high-entropy soft labels − α·(mean prediction entropy)."""
        logp = F.log_softmax(logits, 1)
        target = soft_labels(yb, self.n_classes, self.p_true, logp.dtype)
        soft_ce = -(target * logp).sum(1).mean()
        entropy = -(logp.exp() * logp).sum(1).mean()
        return soft_ce - self.alpha * entropy

    def extra_loss(self, trainer, xb, yb, logits):
        # the trainer adds CE(hard labels); this term replaces it by HAMP's loss
        return self.hamp_loss(logits, yb) - F.cross_entropy(logits, yb)


class HampModel(Deployed):
    """The network plus HAMP's output remapping onto a fixed reference score vector."""

    def __init__(self, inner: nn.Module, reference: torch.Tensor):
        super().__init__(inner)
        # sorted probabilities (descending) of the model on the random input; a buffer, not a parameter
        self.register_buffer("reference", reference, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.inner(x)
        # the class ranked k-th by the model gets the k-th largest reference score; the stable sort
        # breaks ties towards the lower index, as argmax does, so the label never changes
        order = torch.sort(logits.detach(), dim=1, descending=True, stable=True).indices
        ref = self.reference.to(device=logits.device, dtype=torch.float32).log()
        out = torch.empty(logits.shape, dtype=torch.float32, device=logits.device)
        out.scatter_(1, order, ref.expand(len(logits), -1))
        return out.to(logits.dtype)


def reference_scores(model: nn.Module, X_domain: torch.Tensor, seed: int, device: torch.device) -> torch.Tensor:
    """Sorted softmax (descending, CPU float32) of ``model`` on one input drawn uniformly within the
    per-feature range of ``X_domain``, with a strictly largest first entry."""
    from ..train import predict_logits

    lo = X_domain.min(0).values.float()
    hi = X_domain.max(0).values.float()
    gen = torch.Generator().manual_seed(seed + 7331)
    x = lo + (hi - lo) * torch.rand(lo.shape, generator=gen)
    with torch.no_grad():
        p = torch.softmax(predict_logits(model, x[None].to(X_domain.dtype), device).double(), 1)[0]
    r = p.sort(descending=True).values.clamp_min(1e-12)
    if len(r) > 1 and r[0] <= r[1]:  # a tie at the top would let argmax pick another class
        r[0] = r[1] * (1 + 1e-4)
    r = r / r.sum()
    return r.float()


@register_defence("hamp")
class Hamp(Defence):
    description = (
        "Chen & Pattabiraman HAMP: high-entropy soft labels, an entropy regulariser, and "
        "label-preserving remapping of served scores onto outputs on random data"
    )

    # soft_labels: false keeps only the served-output remapping (e.g. when SafeCompress's candidates choose the
    # soft-label strength themselves)
    class Params(Params):
        entropy_threshold: NonNegative = 0.95
        alpha: NonNegative = 0.001
        remap: Flag = True
        soft_labels: Flag = True

    def check(self) -> None:
        gamma = self.params["entropy_threshold"]
        if not 0 < gamma < 1:
            raise ConfigError(
                f"defence 'hamp': entropy_threshold is a fraction of the largest entropy log C and "
                f"must lie in (0, 1) (1 makes the target uniform), got {gamma!r}"
            )

    def callbacks(self, ctx):
        if not self.params["soft_labels"]:
            return []
        n_classes = ctx.spec.n_classes
        p_true = true_class_probability(float(self.params["entropy_threshold"]), n_classes)
        log.info(
            "hamp: soft labels with p_true=%.4f over %d classes (entropy %.3f of log C)",
            p_true,
            n_classes,
            float(self.params["entropy_threshold"]),
        )
        return [_HampLoss(n_classes, p_true, float(self.params["alpha"]))]

    def deploy(self, model, members, nonmembers, seed, device):
        if not self.params["remap"]:
            return model
        reference = reference_scores(model, members[0], seed, device)
        self.fit_report = {"reference_top_score": round(float(reference[0]), 4)}
        log.info("hamp: served scores remapped onto a random input's output (top score %.4f)", float(reference[0]))
        return HampModel(model, reference.to(device))
