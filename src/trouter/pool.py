"""The model pool: which LLMs a router chooses between, where they live and what they cost.

This is the one place where dollar cost is computed (`ModelSpec.cost`, `Pool.cost`). A pool is
written as YAML:

    models:
      - name: big                      # the name routers and the gateway use
        model: gpt-4o                  # the id sent to the endpoint (defaults to name)
        base_url: https://api.openai.com/v1
        api_key_env: OPENAI_API_KEY    # the variable holding the key; never the key itself
        input_price: 2.50              # $ per 1M input tokens
        output_price: 10.00            # $ per 1M output tokens
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from trouter.errors import ConfigError

PER_MILLION = 1_000_000.0
#: Requests in flight per model for the batch work (synthesis, labelling, annotation) when the
#: pool sets no `max_concurrency`. The gateway sets no limit of its own: it serves its clients.
BATCH_CONCURRENCY = 16


class ModelSpec(BaseModel):
    """One pool member: its routing name, endpoint and list prices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Name used by routers, datasets and the gateway.")
    model: str = Field(default="", description="Model id sent to the endpoint; defaults to name.")
    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL (…/v1).")
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the API key (None: no key)."
    )
    input_price: float = Field(default=0.0, ge=0.0, description="$ per 1M input tokens.")
    output_price: float = Field(default=0.0, ge=0.0, description="$ per 1M output tokens.")
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="Simultaneous requests to it (unset: BATCH_CONCURRENCY for synthesis and "
        "labelling, no limit in the gateway).",
    )
    requests_per_minute: float | None = Field(default=None, gt=0.0)
    max_queue_s: float | None = Field(
        default=None,
        description="Gateway only: seconds a request waits for this model's slot or pacing "
        "turn before moving on to the next model of its chain (unset: `trouter serve "
        "--max-queue`, by default up to the deadline; 0: never wait; the last model of a "
        "chain always waits up to the deadline).",
    )
    timeout_s: float = Field(default=60.0, gt=0.0, description="Per-request timeout in seconds.")

    @field_validator("max_queue_s")
    @classmethod
    def _seconds_to_wait(cls, value: float | None, info: ValidationInfo) -> float | None:
        # Not `ge=0`: its message names neither the model nor what is wrong with a NaN.
        if value is not None and not value >= 0.0:
            raise PydanticCustomError(
                "max_queue_s",
                "model '{name}': max_queue_s must be 0 or more seconds, not {value}",
                {"name": info.data.get("name", "?"), "value": value},
            )
        return value

    @model_validator(mode="after")
    def _default_model_id(self) -> ModelSpec:
        if not self.model:
            object.__setattr__(self, "model", self.name)
        return self

    def batch_concurrency(self) -> int:
        """Requests in flight for the batch work: the pool's `max_concurrency`, else the default."""
        return self.max_concurrency or BATCH_CONCURRENCY

    def cost(self, tokens_in: npt.ArrayLike, tokens_out: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Dollar cost of calls with the given token counts (vectorised)."""
        t_in = np.asarray(tokens_in, dtype=np.float64)
        t_out = np.asarray(tokens_out, dtype=np.float64)
        return (t_in * self.input_price + t_out * self.output_price) / PER_MILLION

    def call_cost(self, tokens_in: int, tokens_out: int) -> float:
        """Dollar cost of one call."""
        return float(self.cost(tokens_in, tokens_out))


class Pool(BaseModel):
    """An ordered set of `ModelSpec`s with unique names; the order is the routers' column order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[ModelSpec, ...]

    @field_validator("models")
    @classmethod
    def _unique_non_empty(cls, models: tuple[ModelSpec, ...]) -> tuple[ModelSpec, ...]:
        if not models:
            raise ValueError("a pool needs at least one model")
        names = [m.name for m in models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {', '.join(dupes)}")
        return models

    @classmethod
    def of(cls, specs: Iterable[ModelSpec]) -> Pool:
        return cls(models=tuple(specs))

    def ordered_as(self, names: Iterable[str]) -> Pool | None:
        """This pool with its models in the order of `names`, or None unless it has exactly
        those models (a pool file may list a router's models in any order)."""
        names = tuple(names)
        by_name = {m.name: m for m in self.models}
        if sorted(names) != sorted(by_name):
            return None
        return self.model_copy(update={"models": tuple(by_name[n] for n in names)})

    @classmethod
    def from_prices(cls, prices: dict[str, tuple[float, float]]) -> Pool:
        """A pool with only names and ($/1M in, $/1M out) prices, e.g. for offline evaluation."""
        return cls.of(
            ModelSpec(name=name, input_price=p_in, output_price=p_out)
            for name, (p_in, p_out) in prices.items()
        )

    @classmethod
    def from_dict(cls, raw: Any, source: str = "pool") -> Pool:
        if isinstance(raw, list):
            raw = {"models": raw}
        if not isinstance(raw, dict) or "models" not in raw:
            raise ConfigError(f"{source}: expected a mapping with a 'models' list")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"{source}: {_first_error(exc)}") from None

    @classmethod
    def load(cls, path: str | Path) -> Pool:
        """Read a pool from YAML or JSON."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"pool file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        return cls.from_dict(raw, source=str(path))

    def save(self, path: str | Path) -> None:
        import yaml

        Path(path).write_text(
            yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
        )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)

    def __len__(self) -> int:
        return len(self.models)

    def __iter__(self) -> Iterator[ModelSpec]:  # type: ignore[override]
        return iter(self.models)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __getitem__(self, name: str) -> ModelSpec:
        for spec in self.models:
            if spec.name == name:
                return spec
        raise ConfigError(
            f"model {name!r} is not in the pool; the pool has: {', '.join(self.names)}"
        )

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ConfigError(
                f"model {name!r} is not in the pool; the pool has: {', '.join(self.names)}"
            ) from None

    def subset(self, names: Sequence[str]) -> Pool:
        return Pool.of(self[n] for n in names)

    def prices(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """($/1M input, $/1M output) per model, in pool order."""
        return (
            np.array([m.input_price for m in self.models], dtype=np.float64),
            np.array([m.output_price for m in self.models], dtype=np.float64),
        )

    def cost(self, tokens_in: npt.ArrayLike, tokens_out: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Cost matrix [n, m] from input tokens [n] (or [n, m]) and output tokens [n, m]."""
        p_in, p_out = self.prices()
        t_in = np.asarray(tokens_in, dtype=np.float64)
        if t_in.ndim == 1:
            t_in = t_in[:, None]
        t_out = np.asarray(tokens_out, dtype=np.float64)
        return (t_in * p_in[None, :] + t_out * p_out[None, :]) / PER_MILLION


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])
