"""Plugin parameters: every method, defence and attack declares a pydantic ``Params`` model.

``method.params``, ``defence.params`` and ``audit.attack_params.<attack>`` are validated against it when
the config is read, all through :func:`validate_params`: an unknown key is an error that suggests the
closest parameter and names the valid ones; a value of the wrong type or range is an error naming it.
"""

from __future__ import annotations

from typing import Annotated, Any, Mapping

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, create_model

from .errors import ConfigError
from .registry import closest


class Params(BaseModel):
    """Base of a plugin's parameter model (no parameters). Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _non_negative(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, got {value!r}")
    if value < 0:
        raise ValueError(f"must be ≥ 0, got {value!r}")
    return value


# A number ≥ 0, kept as given (an int stays an int); booleans are refused.
NonNegative = Annotated[float, PlainValidator(_non_negative)]


def params_from_defaults(defaults: Mapping[str, Any], name: str = "Params") -> type[Params]:
    """A parameter model with one untyped field per entry of a plugin's ``defaults`` dict (the older
    spelling, still accepted for plugins): unknown keys are refused, values are not checked."""
    fields: dict[str, Any] = {key: (Any, value) for key, value in defaults.items()}
    return create_model(name, __base__=Params, **fields)


def param_defaults(model: type[Params]) -> dict[str, Any]:
    """The parameters of ``model`` with their defaults (for listings)."""
    return {key: field.get_default(call_default_factory=True) for key, field in model.model_fields.items()}


def _describe(err: dict[str, Any], owner: str, valid: list[str]) -> str:
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        hint = closest(key, valid)
        suggestion = f" (did you mean {hint!r}?)" if hint else ""
        return f"{owner} has no parameter {key!r}{suggestion}; its parameters: {', '.join(valid) or 'none'}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
        return f"{owner}: {key} {msg}"
    return f"{owner}: {key}: {msg} (got {err.get('input')!r})"


def validate_params(model: type[Params], values: Mapping[str, Any] | None, owner: str) -> Params:
    """``values`` validated by ``model``; every problem in one ConfigError (``owner`` names the plugin,
    e.g. "method 'gmp'")."""
    if values is not None and not isinstance(values, Mapping):
        raise ConfigError(f"{owner}: parameters must be a mapping of name: value, got {values!r}")
    try:
        return model.model_validate(dict(values or {}))
    except ValidationError as exc:
        raise ConfigError([_describe(e, owner, list(model.model_fields)) for e in exc.errors()]) from None


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


# true or false, nothing else (a YAML "yes" is already a bool; the string "yes" is refused).
Flag = Annotated[bool, PlainValidator(_flag)]
