"""The gateway's settings (everything `trouter serve` exposes as options)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from trouter.errors import ConfigError
from trouter.tradeoff import Tradeoff


@dataclass(frozen=True)
class GatewayConfig:
    """How the gateway routes, forwards, protects itself and logs.

    `api_keys` are the keys CLIENTS present (empty: no auth); upstream keys come from each pool
    model's `api_key_env` and never appear here.
    """

    api_keys: tuple[str, ...] = ()
    default_tradeoff: str = "balanced"
    #: user turns the router reads, newest last; 0 reads every user turn
    route_turns: int = 1
    route_max_chars: int = 4000
    max_body_bytes: int = 8 * 1024 * 1024
    #: total time for all attempts of one request until an answer starts (s)
    deadline_s: float = 120.0
    #: longest wait for a full model's slot or pacing turn before the next model of the chain
    #: is tried, for pool models that set no `max_queue_s` (None: up to the deadline); the
    #: last model of a chain waits up to the deadline
    max_queue_s: float | None = None
    #: most models tried per request (None: the whole chain)
    max_attempts: int | None = None
    #: streams: ask the upstream for the usage chunk (and hide it from clients that did not ask)
    stream_usage: bool = True
    log_queries: bool = True
    public_metrics: bool = False
    routing_batch: int = 64
    upstream_connections: int = 512

    def __post_init__(self) -> None:
        for setting in fields(self):
            value = getattr(self, setting.name)
            # NaN compares false with everything, so it would slip past every check below.
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{setting.name} must be a finite number, not {value}")
        Tradeoff.parse(self.default_tradeoff)  # fails early with the parser's own message
        if self.route_turns < 0:
            raise ConfigError("route_turns must be 0 (all user turns) or a positive number")
        if self.route_max_chars < 1:
            raise ConfigError("route_max_chars must be at least 1")
        if self.max_body_bytes < 1024:
            raise ConfigError("max_body_bytes must be at least 1024")
        if self.deadline_s <= 0:
            raise ConfigError("the deadline must be a positive number of seconds")
        if self.max_queue_s is not None and self.max_queue_s < 0:
            raise ConfigError(
                f"max_queue_s (--max-queue) must be 0 or more seconds, not {self.max_queue_s}"
            )
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1")

    @property
    def tradeoff(self) -> Tradeoff:
        return Tradeoff.parse(self.default_tradeoff)
