"""The OpenAI-compatible routing gateway (`trouter serve`).

    from trouter.serve import GatewayConfig, create_app
    app = create_app(router, pool, GatewayConfig(api_keys=("sk-team-1",)), store)

Point any OpenAI client at it with `model="trouter"` (or `trouter:cost`, `trouter:lambda=200`,
`trouter:budget=0.5`, or a pool model's own name to bypass routing). Imported lazily by the
CLI: importing `trouter` never loads FastAPI.
"""

from trouter.serve.app import app_from_paths, create_app
from trouter.serve.config import GatewayConfig

__all__ = ["GatewayConfig", "app_from_paths", "create_app"]
