"""The profile text every synthesis prompt carries: the deployment and the full path above."""

from __future__ import annotations

import json
from collections.abc import Sequence

from trouter.profile import LevelSpec, SeedNode, TaskProfile
from trouter.synth.schemas import NodeDraft
from trouter.taxonomy import SEP, Taxonomy, TaxonomyNode


def path_profile(
    profile: TaskProfile, nodes: Sequence[TaxonomyNode | NodeDraft], heading: str = ""
) -> str:
    """One line per level above (level name, node name, definition, example)."""
    if not nodes:
        return ""
    lines = [heading] if heading else []
    for level, node in zip(profile.levels, nodes, strict=False):
        line = f"- {level.name}: {node.name}"
        if node.definition:
            line += f" - {node.definition}"
        if node.example:
            line += f' (e.g. "{node.example}")'
        lines.append(line)
    return "\n".join(lines) + "\n"


def nodes_on_path(taxonomy: Taxonomy, path: str) -> list[TaxonomyNode]:
    """The nodes from the root down to `path`, inclusive."""
    return [taxonomy.node(p) for p in [*Taxonomy.ancestors(path), path]]


def nodes_json(nodes: Sequence[NodeDraft | SeedNode]) -> str:
    """A node set as one JSON line (compact for the prompt, easy to read back in tests)."""
    return json.dumps(
        [{"name": n.name, "definition": n.definition, "example": n.example} for n in nodes],
        ensure_ascii=False,
    )


def scope_text(parent: str | None) -> str:
    if parent is None:
        return "at the top of the taxonomy"
    return f'under the parent "{parent.replace(SEP, " > ")}"'


def seeds_text(level: LevelSpec, parent: str | None) -> str:
    seeds = level.seeds_for(parent)
    if not seeds:
        return ""
    return (
        "The set must include these nodes (you may refine their definitions): "
        + ", ".join(s.name for s in seeds)
        + "."
    )


def levels_text(profile: TaskProfile) -> str:
    return " > ".join(profile.level_names)
