"""trouter: task-aware, cost-aware LLM routing with cold-start data synthesis.

Importing the package is cheap: nothing heavy (torch, a model, a file) is loaded until used.

    >>> from trouter import Tradeoff
    >>> Tradeoff.from_lambda(200.0).lam
    200.0
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public names, resolved lazily so `import trouter` stays fast and side-effect free.
_EXPORTS = {
    "TrouterError": "trouter.errors",
    "ModelSpec": "trouter.pool",
    "Pool": "trouter.pool",
    "RoutingDataset": "trouter.data.dataset",
    "Estimates": "trouter.routers.base",
    "Decision": "trouter.routers.base",
    "Router": "trouter.routers.base",
    "Tradeoff": "trouter.tradeoff",
    "load_router": "trouter.routers.registry",
    "make_router": "trouter.routers.registry",
    "load_encoder": "trouter.encode",
}

if TYPE_CHECKING:
    from trouter.data.dataset import RoutingDataset
    from trouter.encode import load_encoder
    from trouter.errors import TrouterError
    from trouter.pool import ModelSpec, Pool
    from trouter.routers.base import Decision, Estimates, Router
    from trouter.routers.registry import load_router, make_router
    from trouter.tradeoff import Tradeoff


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trouter' has no attribute {name!r}")


__all__ = [
    "Decision",
    "Estimates",
    "ModelSpec",
    "Pool",
    "Router",
    "RoutingDataset",
    "Tradeoff",
    "TrouterError",
    "load_encoder",
    "load_router",
    "make_router",
]
