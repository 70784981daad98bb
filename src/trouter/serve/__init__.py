"""The OpenAI-compatible routing gateway (`trouter serve`).

    from trouter.serve import GatewayConfig, create_app
    app = create_app(router, pool, GatewayConfig(api_keys=("sk-team-1",)), store)

Point any OpenAI client at it with `model="trouter"` (or `trouter:cost`, `trouter:lambda=200`,
`trouter:budget=0.5`, or a pool model's own name to bypass routing). Imported lazily by the
CLI: importing `trouter` never loads FastAPI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "GatewayConfig": "trouter.serve.config",
    "app_from_paths": "trouter.serve.app",
    "create_app": "trouter.serve.app",
}

if TYPE_CHECKING:
    from trouter.serve.app import app_from_paths, create_app
    from trouter.serve.config import GatewayConfig


def __getattr__(name: str) -> Any:
    # Lazy, so `trouter.serve.server.prepare_process` can run before numpy is imported.
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trouter.serve' has no attribute {name!r}")


__all__ = ["GatewayConfig", "app_from_paths", "create_app"]
