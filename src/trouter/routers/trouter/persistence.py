"""How a fitted TRouter's state is saved and read back, and what its saved config implies.

Besides the arrays every router saves (attributes ending in "_", see `routers.base`), a TRouter
has three parts stored under prefixes: the ensemble's members (`net.K.NAME`), the shared cost
model (`cost.`, with its JSON in the state's `cost.meta`) and the cost head's target transform
(`cost_targets.`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from trouter.routers.costmodel import CostModel
from trouter.routers.layout import Layout
from trouter.routers.trouter.cost import CostTargets
from trouter.routers.trouter.fitting import network_shapes
from trouter.routers.trouter.structure import TaskStructure
from trouter.routers.trouter.training import RESIDUAL
from trouter.taxonomy import Taxonomy

if TYPE_CHECKING:
    from trouter.routers.trouter.router import TRouter

Arrays = dict[str, npt.NDArray[Any]]
NET = "net."
COST = "cost."
TARGETS = "cost_targets."
COST_META = COST + "meta"
#: The attributes saved under a prefix rather than as one array each.
PREFIXED = ("members_", "cost_model_", "cost_targets_")


def pack_state(
    router: TRouter, arrays: Arrays, meta: dict[str, Any]
) -> tuple[Arrays, dict[str, Any]]:
    """The router's own state added to the base class's (`arrays`, `meta`), under prefixes."""
    for key in PREFIXED:
        meta.pop(key, None)
    if hasattr(router, "cost_targets_"):
        arrays.update({TARGETS + k: v for k, v in router.cost_targets_.to_arrays().items()})
    for k, member in enumerate(router.members_):
        arrays.update({f"{NET}{k}.{name}": v for name, v in member.items()})
    if hasattr(router, "cost_model_"):
        cost_arrays, cost_meta = router.cost_model_.to_state()
        arrays.update({COST + k: v for k, v in cost_arrays.items()})
        meta[COST_META] = cost_meta
    return arrays, meta


def unpack_state(
    arrays: Arrays, meta: dict[str, Any]
) -> tuple[dict[str, Any], Arrays, dict[str, Any]]:
    """(the prefixed attributes rebuilt, the other arrays, the other JSON state)."""

    def strip(prefix: str) -> Arrays:
        return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}

    members: dict[int, dict[str, npt.NDArray[np.float64]]] = {}
    for key, value in strip(NET).items():
        k, _, name = key.partition(".")
        members.setdefault(int(k), {})[name] = np.asarray(value, dtype=np.float64)
    parts: dict[str, Any] = {"members_": [members[k] for k in sorted(members)]}
    if COST_META in meta:
        parts["cost_model_"] = CostModel.from_state(strip(COST), meta[COST_META])
    if any(k.startswith(TARGETS) for k in arrays):
        parts["cost_targets_"] = CostTargets.from_arrays(strip(TARGETS))
    rest = {k: v for k, v in arrays.items() if not k.startswith((NET, COST, TARGETS))}
    return parts, rest, {k: v for k, v in meta.items() if k != COST_META}


def state_layout(router: TRouter, meta: dict[str, Any], dim: int) -> Layout:
    """The arrays a saved config implies (see `routers.layout`): the ensemble's `ensemble`
    members shaped by the hyper-parameters, the taxonomy's leaves and nodes, the pool's models
    and the cost route; the residuals, kept or not on validation, may be absent."""
    m, leaves = len(router.models_), len(meta.get("leaves_", []))
    nodes = len(TaskStructure.from_taxonomy(Taxonomy.from_dict(meta["taxonomy_"])).nodes)
    route = meta.get("cost_route_", "")
    shapes = network_shapes(router, d=dim, leaves=leaves, nodes=nodes, models=m, route=route)
    # A scalar is saved as one element; latent types learn their vectors, E.
    net = {k: v or (1,) for k, v in shapes.items() if k not in RESIDUAL}
    if meta.get("latent_"):
        net["E"] = (leaves, dim)
    member = Layout(net, {k: v for k, v in shapes.items() if k in RESIDUAL})
    layout = Layout(
        {
            "leaf_vectors_": (leaves, dim),
            "path_matrix_": (leaves, nodes),
            "feature_mean_": (1,),
            "feature_std_": (1,),
        },
        {
            "residual_coef_": (None, m),
            "residual_intercept_": (m,),
            "question_coef_": (None, m),
            "question_intercept_": (m,),
            "question_means_": (leaves, None),
            "calibration_types_": (None, leaves),
            "adapt_coef_": (leaves, m),
        },
    )
    for k in range(router.ensemble):
        layout += member.prefixed(f"{NET}{k}.")
    if route == "direct":
        return layout + Layout({"cost_scale_": (1,)})
    if route == "shared":
        return layout + CostModel.layout(dim, m).prefixed(COST)
    return layout + CostTargets.layout(m * (2 if route == "tokens" else 1)).prefixed(TARGETS)
