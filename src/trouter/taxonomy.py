"""The task taxonomy: a tree of task types (domain -> subcategory -> difficulty -> ...).

Every node has a name, a one-sentence definition and an example query. A leaf is identified by
its path, the node names from the root joined by "/" ("math/algebra/hard"), which is also the
`task` label a `RoutingDataset` carries for each query. Routers read the tree (leaf texts to
embed, which leaves are siblings); the synthesis pipeline builds it; a human may edit the saved
JSON / YAML before synthesis.

    >>> t = Taxonomy.from_task_names(["math/algebra", "math/geometry", "chat"])
    >>> t.leaf_paths()
    ['math/algebra', 'math/geometry', 'chat']
    >>> t.parent("math/algebra")
    'math'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trouter.errors import ConfigError

SEP = "/"  # the same separator as RoutingDataset's task paths


class TaxonomyNode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    definition: str = ""
    example: str = ""
    children: list[TaxonomyNode] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _clean_name(cls, name: str) -> str:
        name = " ".join(name.replace(SEP, "-").split())
        if not name:
            raise ValueError("a node name cannot be blank")
        return name

    @model_validator(mode="after")
    def _unique_children(self) -> TaxonomyNode:
        _check_unique(self.children, f"children of {self.name!r}")
        return self

    @property
    def is_leaf(self) -> bool:
        return not self.children


def _check_unique(nodes: Sequence[TaxonomyNode], where: str) -> None:
    names = [n.name.lower() for n in nodes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{where}: repeated node names {', '.join(dupes)}")


class Taxonomy(BaseModel):
    """A forest of `TaxonomyNode`s with named levels (the first level's nodes are the roots)."""

    model_config = ConfigDict(extra="forbid")

    levels: list[str] = Field(default_factory=lambda: ["task"])
    roots: list[TaxonomyNode]
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> Taxonomy:
        if not self.roots:
            raise ValueError("a taxonomy needs at least one node")
        _check_unique(self.roots, "top level")
        depth = max(len(p) for p, _ in self._walk_leaves())
        if depth > len(self.levels):
            raise ValueError(
                f"the tree is {depth} levels deep but only {len(self.levels)} level names are given"
            )
        return self

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_task_names(cls, tasks: Iterable[str], levels: Sequence[str] | None = None) -> Taxonomy:
        """A taxonomy whose leaves are the given task paths (flat names make a one-level tree)."""
        roots: list[TaxonomyNode] = []
        depth = 1
        for task in dict.fromkeys(t for t in tasks if t):
            parts = [p for p in task.split(SEP) if p.strip()]
            depth = max(depth, len(parts))
            siblings = roots
            for part in parts:
                node = next((n for n in siblings if n.name == part), None)
                if node is None:
                    node = TaxonomyNode(name=part)
                    siblings.append(node)
                siblings = node.children
        if not roots:
            raise ConfigError("cannot build a taxonomy from no task names")
        names = list(levels) if levels else [f"level{i + 1}" for i in range(depth)]
        if depth == 1 and not levels:
            names = ["task"]
        return cls(levels=names, roots=roots)

    # ------------------------------------------------------------------ traversal
    def _walk_leaves(self) -> Iterator[tuple[tuple[str, ...], TaxonomyNode]]:
        stack: list[tuple[tuple[str, ...], TaxonomyNode]] = [
            ((n.name,), n) for n in reversed(self.roots)
        ]
        while stack:
            path, node = stack.pop()
            if node.is_leaf:
                yield path, node
            else:
                stack.extend((path + (c.name,), c) for c in reversed(node.children))

    def walk(self) -> Iterator[tuple[str, TaxonomyNode]]:
        """Every (path, node), parents before children, in tree order."""
        stack: list[tuple[str, TaxonomyNode]] = [(n.name, n) for n in reversed(self.roots)]
        while stack:
            path, node = stack.pop()
            yield path, node
            stack.extend((path + SEP + c.name, c) for c in reversed(node.children))

    def leaf_paths(self) -> list[str]:
        return [SEP.join(p) for p, _ in self._walk_leaves()]

    def leaves(self) -> list[tuple[str, TaxonomyNode]]:
        return [(SEP.join(p), n) for p, n in self._walk_leaves()]

    def node_paths(self) -> list[str]:
        """Every node's path (internal nodes and leaves), parents first."""
        return [p for p, _ in self.walk()]

    def node(self, path: str) -> TaxonomyNode:
        siblings = self.roots
        found: TaxonomyNode | None = None
        for part in path.split(SEP):
            found = next((n for n in siblings if n.name == part), None)
            if found is None:
                raise ConfigError(f"no taxonomy node at {path!r}")
            siblings = found.children
        assert found is not None
        return found

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str) or not path:
            return False
        try:
            self.node(path)
        except ConfigError:
            return False
        return True

    def is_leaf(self, path: str) -> bool:
        return path in self and self.node(path).is_leaf

    @staticmethod
    def parent(path: str) -> str | None:
        head, sep, _ = path.rpartition(SEP)
        return head if sep else None

    @staticmethod
    def ancestors(path: str) -> list[str]:
        """Proper ancestors of a path, root first: 'a/b/c' -> ['a', 'a/b']."""
        parts = path.split(SEP)
        return [SEP.join(parts[:i]) for i in range(1, len(parts))]

    def leaves_under(self, path: str) -> list[str]:
        """Leaf paths at or below `path`."""
        return [p for p in self.leaf_paths() if p == path or p.startswith(path + SEP)]

    def depth(self) -> int:
        return max(len(p) for p, _ in self._walk_leaves())

    def nodes_at_level(self, level: int) -> list[str]:
        """Paths of the nodes at a 0-based level."""
        return [p for p in self.node_paths() if p.count(SEP) == level]

    def leaf_text(self, path: str) -> str:
        """The text a router embeds for a leaf: its path, definitions and example."""
        parts = []
        prefix = ""
        for name in path.split(SEP):
            prefix = f"{prefix}{SEP}{name}" if prefix else name
            node = self.node(prefix)
            parts.append(f"{node.name}: {node.definition}" if node.definition else node.name)
        text = " > ".join(parts)
        example = self.node(path).example
        return f"{text}. Example: {example}" if example else text

    # ------------------------------------------------------------------ IO
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, raw: Any, source: str = "taxonomy") -> Taxonomy:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{source}: {where + ': ' if where else ''}{err['msg']}") from None

    def save(self, path: str | Path) -> Path:
        """Write JSON (.json) or YAML (anything else), atomically."""
        import yaml

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = (
            json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
            if path.suffix == ".json"
            else yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        )
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Taxonomy:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"taxonomy file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))  # YAML is a superset of JSON
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid JSON or YAML ({exc})") from None
        return cls.from_dict(raw, source=str(path))
