"""The taxonomy builder: level by level, generate -> critique/revise -> A/B select (the paper's
loop), with the full profile of every level above in each prompt.

For every parent at the level above (or once, for the top level): the generator proposes the
node set (name, one-sentence definition, example query); then, each round, it critiques and
revises the set, and a blind A/B comparison (order randomised with a seeded RNG) keeps the better
of the current and the revised set. The loop stops when the set has not changed for
`stable_rounds` rounds, or after `max_rounds`. Per-level limits are enforced on every set and
seed nodes are always kept. A level with fixed `nodes` costs no call.

Everything goes through the cached LLM client, so an interrupted build reruns for free.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trouter.errors import DataError
from trouter.llm import LLMClient, StructuredFailure
from trouter.pool import ModelSpec
from trouter.profile import LevelSpec, SeedNode, TaskProfile
from trouter.prompts import load_prompt
from trouter.synth.context import (
    levels_text,
    nodes_json,
    path_profile,
    scope_text,
    seeds_text,
)
from trouter.synth.schemas import Choice, Critique, NodeDraft, NodeSet
from trouter.synth.tasks import run_all
from trouter.taxonomy import SEP, Taxonomy, TaxonomyNode

Node = NodeDraft | SeedNode


@dataclass
class LevelReport:
    """What happened at one level: node counts, rounds, revisions kept, failures."""

    level: str
    parents: int = 0
    nodes: int = 0
    rounds: list[int] = field(default_factory=list)
    revisions_kept: int = 0
    structured_failures: int = 0
    last_error: str = ""  # the last reply's validation error, for the message when none worked
    childless: list[str] = field(default_factory=list)  # parents the generator failed for
    short: list[str] = field(default_factory=list)  # parents with fewer than min_nodes


@dataclass
class BuildReport:
    levels: list[LevelReport] = field(default_factory=list)

    @property
    def structured_failures(self) -> int:
        return sum(lv.structured_failures for lv in self.levels)


def clean_nodes(nodes: Sequence[Node], level: LevelSpec, parent: str | None) -> list[NodeDraft]:
    """Tidy names, drop repeats (case-insensitive), add missing seeds, cut to `max_nodes`
    (dropping non-seed nodes from the end)."""
    out: list[NodeDraft] = []
    seen: set[str] = set()
    for node in nodes:
        name = " ".join(node.name.replace(SEP, "-").split()).strip(" .")
        if not name or name.lower() in seen:
            continue
        seen.add(name.lower())
        out.append(NodeDraft(name=name, definition=node.definition.strip(), example=node.example))
    seeds = level.seeds_for(parent)
    for seed in seeds:
        if seed.name.lower() not in seen:
            seen.add(seed.name.lower())
            out.append(NodeDraft(name=seed.name, definition=seed.definition, example=seed.example))
    seed_names = {s.name.lower() for s in seeds}
    while len(out) > level.max_nodes:
        drop = max(i for i, n in enumerate(out) if n.name.lower() not in seed_names)
        del out[drop]
    return out


def signature(nodes: Sequence[Node]) -> list[tuple[str, str, str]]:
    """Order-insensitive identity of a node set (is a revision a change?)."""
    return sorted(
        (n.name.lower().strip(), " ".join(n.definition.split()), " ".join(n.example.split()))
        for n in nodes
    )


class TaxonomyBuilder:
    """Builds a `Taxonomy` from a `TaskProfile` with an `LLMClient` (see the module docstring)."""

    def __init__(
        self,
        profile: TaskProfile,
        client: LLMClient,
        *,
        spec: ModelSpec | None = None,
        on_level: Callable[[LevelReport], None] | None = None,
    ) -> None:
        self.profile = profile
        self.client = client
        self.spec = spec or profile.generator_spec()
        self.settings = profile.taxonomy
        self.on_level = on_level
        self.prompts = {
            k: load_prompt(f"taxonomy_{k}") for k in ("generate", "critique", "compare")
        }

    async def build(self) -> tuple[Taxonomy, BuildReport]:
        report = BuildReport()
        roots: list[TaxonomyNode] = []
        # Parents of the level being built: (path, nodes from the root to it); None: the top.
        parents: list[tuple[str | None, list[TaxonomyNode]]] = [(None, [])]
        for depth, level in enumerate(self.profile.levels):
            level_report = LevelReport(level=level.name, parents=len(parents))
            children = await run_all(
                self._children(level, depth, p, above, level_report) for p, above in parents
            )
            next_parents: list[tuple[str | None, list[TaxonomyNode]]] = []
            for (path, above), drafts in zip(parents, children, strict=True):
                nodes = [
                    TaxonomyNode(name=d.name, definition=d.definition, example=d.example)
                    for d in drafts
                ]
                (above[-1].children if above else roots).extend(nodes)
                level_report.nodes += len(nodes)
                if not nodes:
                    level_report.childless.append(path or "(top)")
                elif len(nodes) < level.min_nodes:
                    level_report.short.append(path or "(top)")
                for node in nodes:
                    child_path = f"{path}{SEP}{node.name}" if path else node.name
                    next_parents.append((child_path, [*above, node]))
            report.levels.append(level_report)
            if self.on_level is not None:
                self.on_level(level_report)
            if not next_parents:
                raise _no_nodes(level, level_report, self.spec)
            parents = next_parents
        taxonomy = Taxonomy(
            levels=self.profile.level_names, roots=roots, description=self.profile.description
        )
        return taxonomy, report

    # ------------------------------------------------------------------ one parent
    def _context(
        self, level: LevelSpec, parent: str | None, above: Sequence[TaxonomyNode]
    ) -> dict[str, Any]:
        p = self.profile
        return {
            "description": p.description.strip(),
            "audience": p.audience.strip() or "the deployment's users",
            "languages": ", ".join(p.languages),
            "levels": levels_text(p),
            "path_profile": path_profile(p, above, "The parent categories, from the top:"),
            "level": level.name,
            "level_description": level.description or "no description given",
            "scope": scope_text(parent),
            "min_nodes": level.min_nodes,
            "max_nodes": level.max_nodes,
            "seeds": seeds_text(level, parent),
        }

    async def _children(
        self,
        level: LevelSpec,
        depth: int,
        parent: str | None,
        above: Sequence[TaxonomyNode],
        report: LevelReport,
    ) -> list[NodeDraft]:
        if level.nodes is not None:
            report.rounds.append(0)
            return clean_nodes(level.nodes, level, parent)
        ctx = self._context(level, parent, above)
        meta = {"level": level.name, "parent": parent or "", "min": level.min_nodes}
        meta["max"] = level.max_nodes
        meta["seeds"] = [s.name for s in level.seeds_for(parent)]
        params: dict[str, Any] = {
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
        }
        where = f"{level.name}:{parent or '(top)'}"
        first = await self.client.structured(
            self.spec,
            self.prompts["generate"].render(meta=meta, **ctx),
            NodeSet,
            purpose="taxonomy.generate",
            **params,
        )
        if isinstance(first, StructuredFailure):
            report.structured_failures += 1
            report.last_error = first.error
            report.rounds.append(0)
            return clean_nodes([], level, parent)  # the seeds, if any
        current = clean_nodes(first.value.nodes, level, parent)
        unchanged = 0
        rounds = 0
        for round_no in range(1, self.settings.max_rounds + 1):
            if unchanged >= self.settings.stable_rounds:
                break
            rounds = round_no
            revised = await self.client.structured(
                self.spec,
                self.prompts["critique"].render(
                    meta={**meta, "round": round_no}, current=nodes_json(current), **ctx
                ),
                Critique,
                purpose="taxonomy.critique",
                tag=f"round-{round_no}",  # a fresh sample each round, reproducible on rerun
                **params,
            )
            if isinstance(revised, StructuredFailure):
                report.structured_failures += 1
                report.last_error = revised.error
                unchanged += 1
                continue
            candidate = clean_nodes(revised.value.nodes, level, parent)
            if signature(candidate) == signature(current):
                unchanged += 1
                continue
            if await self._revised_wins(current, candidate, ctx, meta, round_no, where, report):
                current = candidate
                report.revisions_kept += 1
                unchanged = 0
            else:
                unchanged += 1
        report.rounds.append(rounds)
        return current

    async def _revised_wins(
        self,
        current: list[NodeDraft],
        revised: list[NodeDraft],
        ctx: dict[str, Any],
        meta: dict[str, Any],
        round_no: int,
        where: str,
        report: LevelReport,
    ) -> bool:
        # The order is a seeded coin per (level, parent, round): blind to position bias, and
        # the same on a rerun, so the cached judgement is reused.
        rng = random.Random(f"{self.settings.seed}|{where}|{round_no}")
        revised_first = rng.random() < 0.5
        set_a, set_b = (revised, current) if revised_first else (current, revised)
        verdict = await self.client.structured(
            self.spec,
            self.prompts["compare"].render(
                meta={**meta, "round": round_no},
                set_a=nodes_json(set_a),
                set_b=nodes_json(set_b),
                **{k: v for k, v in ctx.items() if k not in ("audience", "languages", "seeds")},
            ),
            Choice,
            purpose="taxonomy.compare",
            temperature=0.0,
            max_tokens=400,
        )
        if isinstance(verdict, StructuredFailure):
            report.structured_failures += 1
            return False  # no verdict: keep what we have
        return (verdict.value.better == "A") == revised_first


def _no_nodes(level: LevelSpec, report: LevelReport, spec: ModelSpec) -> DataError:
    """The error for a level left without a single node (no taxonomy can be saved then)."""
    why = (
        f"no valid reply to {report.structured_failures} request(s); the last error: "
        f"{report.last_error}"
        if report.structured_failures
        else "its replies held no nodes"
    )
    return DataError(
        f"the generator gave no usable nodes for level {level.name!r} ({why}); check the "
        f"generator {spec.name!r} (model, endpoint) or give the level fixed nodes or seeds in "
        "the profile, then rerun (invalid replies are not cached: a rerun asks again)"
    )


async def build_taxonomy(
    profile: TaskProfile,
    client: LLMClient,
    *,
    on_level: Callable[[LevelReport], None] | None = None,
) -> tuple[Taxonomy, BuildReport]:
    """Build the taxonomy a profile describes (see `TaxonomyBuilder`)."""
    return await TaxonomyBuilder(profile, client, on_level=on_level).build()
