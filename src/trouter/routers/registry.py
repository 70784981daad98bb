"""The one router registry: name -> class, imported lazily so `import trouter` stays light.

Adding a router means adding one line here; the CLI, the benchmark and the shared contract
tests all read this table.
"""

from __future__ import annotations

import inspect
from importlib import import_module
from math import isfinite
from pathlib import Path
from typing import Any

from trouter.errors import ConfigError
from trouter.routers.base import Router
from trouter.routers.directory import read_config

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
    """A new, unfitted router by registry name; each hyper-parameter checked against the type
    its constructor declares (values from the command line arrive as text or JSON)."""
    cls = router_class(name)
    for key, value in params.items():
        _check_type(name, key, value, _annotation(cls, key))
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"router {name!r}: {exc}") from None


#: The annotations `_check_type` reads; any other type is left to the router to check.
_SIMPLE: dict[str, type] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "None": type(None),
}


def _annotation(cls: type, key: str) -> Any:
    """The annotation of constructor parameter `key` (a string: annotations are postponed),
    from the first class up the MRO whose `__init__` names it (PaperTRouter takes **params)."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None and key in (parameters := inspect.signature(init).parameters):
            return parameters[key].annotation
    return None


def _check_type(router: str, key: str, value: Any, annotation: Any) -> None:
    if not isinstance(annotation, str):
        return
    kinds = [part.strip() for part in annotation.split("|")]
    if not all(kind in _SIMPLE for kind in kinds):
        return
    if not any(_fits(value, _SIMPLE[kind]) for kind in kinds):
        raise ConfigError(f"router {router!r}: {key} must be {' or '.join(kinds)}, got {value!r}")


def _fits(value: Any, kind: type) -> bool:
    if kind is float:  # an int is a float too, a bool is neither, and NaN or inf is no setting
        return isinstance(value, int | float) and not isinstance(value, bool) and isfinite(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


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
