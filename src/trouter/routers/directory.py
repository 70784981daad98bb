"""A saved router is a directory; this module writes and reads it.

    config.json           router name, hyper-parameters, pool, encoder, JSON state, and the
                          weights' SHA-256
    weights.safetensors   every array of the fitted state (`state.NAME`), and the calibration set

Loading needs no training data, and a loaded router makes exactly the same decisions. A weights
file changed on disk, or left from another save (a crash between the two files' writes), fails
the SHA-256 check; in a directory saved before the hash existed, weights that are not what the
config describes (another router's) fail the layout check (`routers.layout`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt

from trouter.errors import ConfigError
from trouter.paths import atomic_target, make_dir
from trouter.pool import Pool
from trouter.routers.layout import Layout
from trouter.tradeoff import Calibration

if TYPE_CHECKING:
    from trouter.routers.base import Router

FORMAT = "trouter-router/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
STATE = "state."

Arrays = dict[str, npt.NDArray[Any]]
R = TypeVar("R", bound="Router")


def write_router(router: Router, directory: str | Path) -> Path:
    """Write a fitted router to `directory` (created if needed; files replaced atomically)."""
    from safetensors.numpy import save as to_bytes

    directory = make_dir(Path(directory), "the router directory")
    arrays, meta = router._get_state()
    arrays = {STATE + k: np.ascontiguousarray(v) for k, v in arrays.items()}
    if hasattr(router, "calibration_"):
        arrays["calibration.quality"] = np.ascontiguousarray(router.calibration_.quality)
        arrays["calibration.cost"] = np.ascontiguousarray(router.calibration_.cost)
    encoder = router.encoder_ if router.uses_encoder else None
    weights = to_bytes(arrays)
    config = {
        "format": FORMAT,
        "router": router.name,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "params": router.get_params(),
        "models": list(router.models_),
        "pool": router.pool_.model_dump(mode="json") if router.pool_ is not None else None,
        "encoder": {"spec": encoder.spec, "id": encoder.id, "dim": encoder.dim}
        if encoder
        else None,
        "state": meta,
    }
    with atomic_target(directory / WEIGHTS_FILE) as tmp:
        tmp.write_bytes(weights)
    with atomic_target(directory / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(config, indent=2, default=_json_default))
    return directory


def read_router(cls: type[R], config: dict[str, Any], directory: Path) -> R:
    """A router of class `cls` from its config (see `read_config`) and its directory's weights."""
    router = cls(**config["params"])
    tensors = read_weights(config, directory)
    router.models_ = tuple(config["models"])
    router.pool_ = Pool.from_dict(config["pool"]) if config.get("pool") else None
    # Without the SHA-256 (older saves), weights copied from another router would load
    # and fail at the first route(): compare them with what the config describes first.
    problem = weights_problem(router, tensors, config)
    if problem is not None:
        raise ConfigError(
            f"{directory}: {WEIGHTS_FILE} does not fit the router {CONFIG_FILE} describes "
            f"({problem}), e.g. another router's weights; retrain it with `trouter train`"
        )
    if "calibration.quality" in tensors:
        router.calibration_ = Calibration(
            tensors["calibration.quality"], tensors["calibration.cost"]
        )
    arrays = {k.removeprefix(STATE): v for k, v in tensors.items() if k.startswith(STATE)}
    router._set_state(arrays, config.get("state", {}))
    check_encoder(router, config, directory)
    return router


def read_weights(config: dict[str, Any], directory: Path) -> Arrays:
    """The directory's arrays, after the SHA-256 check (when the config has the hash)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        weights = (directory / WEIGHTS_FILE).read_bytes()
        expected = config.get("weights_sha256")  # routers saved before it have none
        if expected is not None and hashlib.sha256(weights).hexdigest() != expected:
            raise ValueError(f"it does not match the SHA-256 in {CONFIG_FILE}")
        tensors: Arrays = load(weights)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(
            f"{directory / WEIGHTS_FILE}: weights file is missing or corrupted ({exc}); "
            "retrain or restore the router"
        ) from None
    return tensors


def weights_problem(router: Router, tensors: Arrays, config: dict[str, Any]) -> str | None:
    """How the weights differ from what the config describes (see `Router._layout`), or None if
    they fit; `router.models_` is set."""
    m = len(router.models_)
    calibration = Layout({}, {"calibration.quality": (None, m), "calibration.cost": (None, m)})
    dim = (config.get("encoder") or {}).get("dim")
    layout = router._layout(config.get("state", {}), dim if isinstance(dim, int) else None)
    if layout is None:
        tensors = {k: v for k, v in tensors.items() if not k.startswith(STATE)}
        return calibration.mismatch(tensors)
    return (calibration + layout.prefixed(STATE)).mismatch(tensors)


def check_encoder(router: Router, config: dict[str, Any], directory: Path) -> None:
    """Refuse a router whose encoder spec now loads another encoder than it was trained with;
    warn if it loads a later version whose vectors differ only by rounding."""
    expected = (config.get("encoder") or {}).get("id")
    if not expected or not router.uses_encoder or router.encoder_.id == expected:
        return
    loaded = router.encoder_.id
    if expected not in getattr(router.encoder_, "earlier_ids", ()):
        raise ConfigError(
            f"{directory}: router was trained with encoder {expected}, but its spec now "
            f"loads {loaded} (another version or other model files); retrain it with "
            "`trouter train`"
        )
    warnings.warn(
        f"{directory}: router was trained with encoder {expected}, an earlier version of "
        f"{loaded} whose vectors differ only by rounding; it routes, but retrain it "
        "(`trouter train`) to match exactly",
        stacklevel=4,  # load_router's line, as when this was in Router._from_config
    )


def read_config(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            f"{directory} is not a router directory (no {CONFIG_FILE}); train one with `trouter train`"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: corrupted router config ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a trouter router config (expected format {FORMAT})")
    return config


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a router config")
