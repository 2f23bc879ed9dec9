"""Privacy defences that combine with any compression method ("compress, then defend").

A defence contributes training callbacks (a loss term, a schedule, early stopping) and may need parts
of the split besides ``train`` (e.g. held-out non-members for adversarial regularisation). Each
declares its parameters as a pydantic ``Params`` model (:mod:`..params`); ``defence.params`` in the config
overrides the defaults and unknown or ill-typed parameters are configuration errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ..config import RunConfig
from ..params import Params, param_defaults, params_from_defaults, validate_params
from ..registry import Registry
from ..train import Callback

if TYPE_CHECKING:  # pragma: no cover
    from ..methods.base import MethodContext


class Defence:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}  # derived from Params (for listings)
    Params: ClassVar[type[Params]] = Params  # its parameters, with defaults (validated from defence.params)
    needs_parts: ClassVar[tuple[str, ...]] = ("train",)

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if "defaults" in cls.__dict__ and "Params" not in cls.__dict__:  # the older spelling, kept for plugins
            cls.Params = params_from_defaults(cls.__dict__["defaults"], f"{cls.__name__}Params")
        cls.defaults = param_defaults(cls.Params)

    def __init__(self, **params: Any):
        self.params = validate_params(self.Params, params, f"defence {self.name!r}").model_dump()
        self.check()

    def check(self) -> None:
        """Further parameter checks (raise ConfigError)."""

    def callbacks(self, ctx: "MethodContext") -> list[Callback]:
        return []

    def split_problems(self, sizes: dict[str, int]) -> list[str]:
        """What about the run's split sizes (part → count) this defence cannot work with; checked before training."""
        return []

    def deploy(
        self,
        model: nn.Module,
        members: tuple[torch.Tensor, torch.Tensor],
        nonmembers: tuple[torch.Tensor, torch.Tensor],
        seed: int,
        device: torch.device,
    ) -> nn.Module:
        """The model as it is served. Inference-time defences (MemGuard) wrap it in a
        :class:`Deployed` module; ``members`` are training data and ``nonmembers`` held-out data the
        defender may use to fit its own attack model. Training-time defences return ``model``."""
        return model


class Deployed(nn.Module):
    """A served model: the trained network plus an inference-time output transformation.

    ``inner`` is the network itself. A white-box attacker holds the weights and bypasses the
    transformation (see :func:`unwrap`); black-box attacks only see this module's outputs.
    """

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner


def unwrap(model: nn.Module) -> nn.Module:
    """The trained network under any inference-time defence wrappers."""
    while isinstance(model, Deployed):
        model = model.inner
    return model


DEFENCES: Registry[type[Defence]] = Registry("defence")
register_defence = DEFENCES.register


def build_defence(cfg: RunConfig) -> Defence:
    """The defence ``cfg`` configures (``defence.name`` with its ``defence.params``), built once by whoever
    sets up a run and handed to its :class:`~safecompress.methods.base.MethodContext`."""
    return DEFENCES.get(cfg.defence.name)(**cfg.defence.params)


@register_defence("none")
class NoDefence(Defence):
    description = "no defence"
