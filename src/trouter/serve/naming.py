"""The one place that reads a request's `model` field.

    trouter                 route with the gateway's default trade-off (normally `balanced`)
    trouter:balanced        route with a preset: quality | balanced | cost
    trouter:lambda=200      route with lam = 200 quality points per dollar
    trouter:budget=0.5      route to spend at most about $0.50 per 1k queries
    <pool model name>       bypass routing: send the request to that model as is

Anything else is a 404 that lists the valid names; a malformed trade-off value is a 400.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from trouter.errors import ConfigError
from trouter.serve.errors import GatewayError, bad_request
from trouter.tradeoff import PRESET_WEIGHTS, Tradeoff

ROUTED_NAME = "trouter"
SEPARATOR = ":"
_PARAMETERISED = ("lambda", "lam", "budget")
_CACHE_SIZE = 512


@dataclass(frozen=True, slots=True)
class Target:
    """What a request asked for: a trade-off to route by, or one pool model (bypass)."""

    requested: str
    tradeoff: Tradeoff | None = None
    model: str | None = None

    @property
    def routed(self) -> bool:
        return self.tradeoff is not None


class ModelNames:
    """Parses `model` fields for one pool; results are cached (a bounded LRU) per string."""

    def __init__(self, pool_names: Sequence[str], default_tradeoff: Tradeoff) -> None:
        self.pool_names = tuple(pool_names)
        self.default_tradeoff = default_tradeoff
        self._cache: OrderedDict[str, Target] = OrderedDict()

    @property
    def routed_names(self) -> tuple[str, ...]:
        """The routed names `GET /v1/models` lists (parameterised forms are documented, not listed)."""
        return (ROUTED_NAME, *(f"{ROUTED_NAME}{SEPARATOR}{p}" for p in PRESET_WEIGHTS))

    def valid_names_text(self) -> str:
        forms = [
            *self.routed_names,
            f"{ROUTED_NAME}{SEPARATOR}lambda=NUMBER",
            f"{ROUTED_NAME}{SEPARATOR}budget=DOLLARS_PER_1K_QUERIES",
            *self.pool_names,
        ]
        return ", ".join(forms)

    def parse(self, value: str) -> Target:
        """The `Target` for a `model` field, or a `GatewayError` (404 unknown, 400 malformed)."""
        target = self._cache.get(value)
        if target is not None:
            self._cache.move_to_end(value)
            return target
        target = self._parse(value)
        self._cache[value] = target
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return target

    def _parse(self, value: str) -> Target:
        if value in self.pool_names:
            return Target(value, model=value)
        if value == ROUTED_NAME:
            return Target(value, tradeoff=self.default_tradeoff)
        prefix, sep, spec = value.partition(SEPARATOR)
        if prefix == ROUTED_NAME and sep:
            key = spec.partition("=")[0].strip()
            if spec in PRESET_WEIGHTS:
                return Target(value, tradeoff=Tradeoff.from_preset(spec))
            if "=" in spec and key in _PARAMETERISED:
                try:
                    return Target(value, tradeoff=Tradeoff.parse(spec))
                except ConfigError as exc:
                    raise bad_request(f"model {value!r}: {exc}", param="model") from None
        raise GatewayError(
            404,
            f"The model {value!r} does not exist on this gateway; use one of: "
            f"{self.valid_names_text()}",
            param="model",
            code="model_not_found",
        )
