"""TRouter, the task-type-aware router: see `trouter.routers.trouter.router`."""

from trouter.routers.trouter.router import PaperTRouter, TRouter

__all__ = ["PaperTRouter", "TRouter"]
