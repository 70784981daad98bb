"""TRouter's hyper-parameter checks and its `taxonomy` argument (kept as given by the constructor,
resolved at fit time, as scikit-learn estimators do)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trouter.errors import ConfigError
from trouter.routers.trouter.cost import COST_MODELS
from trouter.routers.trouter.views import TEXT_VIEWS
from trouter.taxonomy import Taxonomy

if TYPE_CHECKING:
    from trouter.routers.trouter.router import TRouter

QUALITY_LOSSES = ("bce", "mse")


def check_params(router: TRouter) -> None:
    """Every hyper-parameter in range, else a ConfigError naming it (called at fit time)."""
    choices = {
        "text_view": (router.text_view, TEXT_VIEWS),
        "cost_model": (router.cost_model, COST_MODELS),
        "quality_loss": (router.quality_loss, QUALITY_LOSSES),
    }
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"trouter: {name} must be one of {', '.join(allowed)}, got {value!r}")
    positive = {
        "hidden": router.hidden,
        "tail_chars": router.tail_chars,
        "batch_size": router.batch_size,
        "max_epochs": router.max_epochs,
        "patience": router.patience,
        "ensemble": router.ensemble,
    }
    for name, count in positive.items():
        if int(count) < 1:
            raise ConfigError(f"trouter: {name} must be at least 1, got {count}")
    weights = {"beta": router.beta, "hier_l2": router.hier_l2, "lr": router.lr}
    for name, weight in weights.items():
        if not (weight >= 0 and math.isfinite(weight)):
            raise ConfigError(f"trouter: {name} must be a non-negative number, got {weight}")
    if not 0.0 <= router.dropout < 1.0:
        raise ConfigError(f"trouter: dropout must be in [0, 1), got {router.dropout}")
    if int(router.residual_hidden) < 0:
        raise ConfigError(
            f"trouter: residual_hidden must be 0 (linear) or more, got {router.residual_hidden}"
        )
    if router.latent_types is not None and router.latent_types < 1:
        raise ConfigError(f"trouter: latent_types must be at least 1, got {router.latent_types}")


def resolve_taxonomy(tax: Taxonomy | dict[str, Any] | str | Path | None) -> Taxonomy | None:
    """The `taxonomy` argument as a Taxonomy: given as one, as its dict, or as a file path."""
    if tax is None or isinstance(tax, Taxonomy):
        return tax
    if isinstance(tax, dict):
        return Taxonomy.from_dict(tax)
    if isinstance(tax, str | Path):
        return Taxonomy.load(tax)
    raise ConfigError(
        f"trouter: taxonomy must be a Taxonomy, a dict or a file path, got {type(tax).__name__}"
    )
