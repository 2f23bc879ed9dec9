"""Privacy defences that combine with any compression method ("compress, then defend").

A defence contributes training callbacks (a loss term, a schedule, early stopping) and may need parts
of the split besides ``train`` (e.g. held-out non-members for adversarial regularisation). Each
declares its parameters with defaults in ``defaults``; ``defence.params`` in the config overrides
them and unknown or ill-typed parameters are configuration errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ConfigError
from ..registry import Registry
from ..train import Callback

if TYPE_CHECKING:  # pragma: no cover
    from ..methods.base import MethodContext


class Defence:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    needs_parts: ClassVar[tuple[str, ...]] = ("train",)

    def __init__(self, **params: Any):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ConfigError(f"defence {self.name!r} has no parameter(s) {unknown}; "
                              f"its parameters: {', '.join(self.defaults) or 'none'}")
        self.params = {**self.defaults, **params}
        for key, value in self.params.items():
            default = self.defaults[key]
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(f"defence {self.name!r}: {key} must be a number, got {value!r}")
                if value < 0:
                    raise ConfigError(f"defence {self.name!r}: {key} must be ≥ 0, got {value!r}")
        self.check()

    def check(self) -> None:
        """Further parameter checks (raise ConfigError)."""

    def callbacks(self, ctx: "MethodContext") -> list[Callback]:
        return []


DEFENCES: Registry[type[Defence]] = Registry("defence")
register_defence = DEFENCES.register


@register_defence("none")
class NoDefence(Defence):
    description = "no defence"
