"""TRouter, the task-type-aware router: see `trouter.routers.trouter.router`.

The router's steps live beside it: `fitting` (the fit, step by step), `training` (loss and
optimiser), `network` (the forward pass), `residual`, `cost`, `structure` (the taxonomy's
leaves and prior), `views` (what text is embedded), `adapt` (corrections from live outcomes)
and `persistence` (what is saved, and what a saved config implies).
"""

from trouter.routers.trouter.router import PaperTRouter, TRouter

__all__ = ["PaperTRouter", "TRouter"]
