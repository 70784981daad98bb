"""The one router registry: name -> class, imported lazily so `import trouter` stays light.

Adding a router means adding one line here; the CLI, the benchmark and the shared contract
tests all read this table.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from trouter.errors import ConfigError
from trouter.routers.base import Router, read_config

_ROUTERS: dict[str, str] = {
    "random": "trouter.routers.simple:RandomRouter",
    "single": "trouter.routers.simple:SingleModelRouter",
    "oracle": "trouter.routers.simple:OracleRouter",
    "knn": "trouter.routers.knn:KNNRouter",
    "linear": "trouter.routers.linear:LinearRouter",
    "mlp": "trouter.routers.mlp:MLPRouter",
    "mf": "trouter.routers.mf:MFRouter",
    "trouter": "trouter.routers.trouter:TRouter",
    "trouter-paper": "trouter.routers.trouter:PaperTRouter",
}


def router_names(include_evaluation_only: bool = True) -> list[str]:
    names = list(_ROUTERS)
    if not include_evaluation_only:
        names = [n for n in names if not router_class(n).evaluation_only]
    return names


def router_class(name: str) -> type[Router]:
    if name not in _ROUTERS:
        raise ConfigError(f"unknown router {name!r}; choose one of {', '.join(_ROUTERS)}")
    module, _, attr = _ROUTERS[name].partition(":")
    cls: type[Router] = getattr(import_module(module), attr)
    return cls


def make_router(name: str, **params: Any) -> Router:
    """A new, unfitted router by registry name."""
    try:
        return router_class(name)(**params)
    except TypeError as exc:
        raise ConfigError(f"router {name!r}: {exc}") from None


def load_router(directory: str | Path, expect_models: tuple[str, ...] | None = None) -> Router:
    """Load a saved router directory; `expect_models` checks it was trained for those models (in
    any order)."""
    directory = Path(directory)
    config = read_config(directory)
    router = router_class(config["router"])._from_config(config, directory)
    if expect_models is not None and sorted(expect_models) != sorted(router.models_):
        raise ConfigError(
            f"{directory}: router was trained for models {', '.join(router.models_)}, "
            f"but the pool has {', '.join(expect_models)}; retrain it for this pool"
        )
    return router
