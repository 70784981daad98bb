"""The items a cold start no longer asks for, set aside before the items step writes what is
missing: kept in items.stray.jsonl, never deleted."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from trouter.paths import atomic_target

if TYPE_CHECKING:
    from trouter.coldstart.reporter import Reporter
    from trouter.coldstart.state import RunPaths
    from trouter.profile import TaskProfile
    from trouter.synth.items import SynthItem


def set_aside_stray(
    paths: RunPaths, profile: TaskProfile, leaves: set[str], report: Reporter
) -> int:
    """Move the items the profile and taxonomy no longer ask for to items.stray.jsonl (kept,
    never deleted): those of leaves no longer in the taxonomy (a hand edit), of answer
    formats no longer in `answer_formats`, and those past a lowered `items_per_leaf` (the
    earliest written are kept). The items step then writes whatever is missing."""
    from trouter.synth.items import ItemsFile

    formats = set(profile.synthesis.answer_formats)
    journal = ItemsFile(paths.items)
    journal.repair()
    items = journal.read()
    keep: list[SynthItem] = []
    aside: list[SynthItem] = []
    why: Counter[str] = Counter()
    per_leaf: Counter[str] = Counter()
    seen: set[str] = set()
    repeated = 0
    for it in items:
        if it.id in seen:  # written twice (e.g. by two runs at once): keep one
            repeated += 1
            continue
        seen.add(it.id)
        if it.path not in leaves:
            why["of leaves no longer in the taxonomy"] += 1
        elif it.answer_format not in formats:
            why[f"of answer formats no longer asked for ({it.answer_format})"] += 1
        elif per_leaf[it.path] >= profile.items_per_leaf:
            why[f"past items_per_leaf ({profile.items_per_leaf})"] += 1
        else:
            per_leaf[it.path] += 1
            keep.append(it)
            continue
        aside.append(it)
    if len(keep) == len(items):
        return 0
    ItemsFile(paths.stray_items).append(aside)
    with atomic_target(paths.items) as tmp:
        ItemsFile(tmp).append(keep)
    if why:
        reasons = "; ".join(f"{n} {reason}" for reason, n in why.items())
        report.message(
            f"{len(aside)} items set aside in {paths.stray_items}: {reasons}",
            warning=True,
        )
    if repeated:
        report.message(f"{repeated} repeated items dropped from {paths.items}")
    return len(aside)
