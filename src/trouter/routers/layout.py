"""What a saved router's weights must hold, as its config describes it: names and shapes.

A router directory's weights file and config are written together, and the config holds the
weights' SHA-256. Directories saved before that hash existed have none, so weights copied in
from another router (another kind, pool, taxonomy or size) would load and then fail at the first
`route()`. Each router therefore declares the arrays its config implies (`Router._layout`), and
loading compares them with the file, like torch's strict `load_state_dict`: no array missing,
none extra, every shape as the config builds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy.typing as npt

#: An array's shape; None where the config does not fix the size (e.g. a count of queries).
Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class Layout:
    """The state arrays a router's config implies: `required` ones and `optional` ones (present
    only after some fits, e.g. a residual kept on validation), by name, with their shapes."""

    required: Mapping[str, Shape]
    optional: Mapping[str, Shape] = field(default_factory=dict)

    def __add__(self, other: Layout) -> Layout:
        return Layout({**self.required, **other.required}, {**self.optional, **other.optional})

    def prefixed(self, prefix: str) -> Layout:
        """The same layout with every name prefixed (a part saved under a prefix)."""
        return Layout(
            {prefix + k: v for k, v in self.required.items()},
            {prefix + k: v for k, v in self.optional.items()},
        )

    def mismatch(self, arrays: Mapping[str, npt.NDArray[Any]]) -> str | None:
        """The first way `arrays` differ from this layout, in words, or None if they fit."""
        missing = sorted(set(self.required) - set(arrays))
        if missing:
            return f"no array {missing[0]!r}"
        extra = sorted(set(arrays) - set(self.required) - set(self.optional))
        if extra:
            return f"an array {extra[0]!r} it does not use"
        for name, value in sorted(arrays.items()):
            shape = {**self.optional, **self.required}[name]
            if not fits(value.shape, shape):
                return f"{name!r} has shape {_show(value.shape)}, expected {_show(shape)}"
        return None


def fits(actual: tuple[int, ...], expected: Shape) -> bool:
    return len(actual) == len(expected) and all(
        e is None or a == e for a, e in zip(actual, expected, strict=True)
    )


def _show(shape: Shape) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
