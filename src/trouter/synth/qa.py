"""QA synthesis: for every taxonomy leaf, batches of queries with reference answers, checked
for answerability and near-duplicates, written durably as they are accepted.

Resuming is replay: a rerun walks every leaf's batches again in the same order. The requests
are identical, so their responses come from the store's cache; items already in the items file
are recognised by id and not written twice; the dedup index starts with every item in the file.
Because each batch's accept-and-write step has no `await` inside, what was written before a
kill is exactly what the replay accepts again - no duplicate, no missing item.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import insert, select

from trouter.encode import Encoder, load_encoder
from trouter.errors import DataError
from trouter.llm import LLMClient, StructuredFailure
from trouter.pool import ModelSpec
from trouter.profile import TaskProfile
from trouter.prompts import load_prompt
from trouter.store import Store, SynthItemRow, utcnow
from trouter.synth.context import nodes_on_path, path_profile
from trouter.synth.dedup import Deduper
from trouter.synth.items import ItemsFile, SynthItem, format_choices
from trouter.synth.schemas import QABatch, QADraft, Verdicts
from trouter.synth.tasks import run_all
from trouter.taxonomy import Taxonomy

AVOID_LAST = 25  # earlier queries of the leaf shown to the generator, to steer away from them


@dataclass
class SynthReport:
    """Counts of what synthesis did; `short_leaves` got fewer items than asked for."""

    leaves: int = 0
    leaves_done_before: int = 0
    items_before: int = 0
    items_new: int = 0
    batches: int = 0
    invalid: int = 0
    unanswerable: int = 0
    duplicates_leaf: int = 0
    duplicates_global: int = 0
    structured_failures: int = 0
    last_error: str = ""  # the last invalid reply's error (for a run that wrote nothing)
    unchecked: int = 0
    short_leaves: list[str] = field(default_factory=list)

    @property
    def items_total(self) -> int:
        return self.items_before + self.items_new


def journal_path(out: str | Path) -> Path:
    """The append-only JSONL file behind an output path (itself, unless it is .parquet)."""
    out = Path(out)
    return out.with_suffix(".jsonl") if out.suffix == ".parquet" else out


class Synthesizer:
    """Writes `items_per_leaf` items for every leaf of `taxonomy` into `out` (see module doc)."""

    def __init__(
        self,
        profile: TaskProfile,
        taxonomy: Taxonomy,
        client: LLMClient,
        out: str | Path,
        *,
        store: Store | None = None,
        encoder: Encoder | str | None = None,
        spec: ModelSpec | None = None,
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        self.profile = profile
        self.settings = profile.synthesis
        self.taxonomy = taxonomy
        self.client = client
        self.out = Path(out)
        self.file = ItemsFile(journal_path(out))
        self.store = store
        self.spec = spec or profile.generator_spec()
        spec_text = encoder if encoder is not None else self.settings.encoder
        self.encoder = load_encoder(
            spec_text, cache=isinstance(spec_text, str) and not spec_text.startswith("hashing")
        )
        self.on_batch = on_batch
        self.generate = load_prompt("qa_generate")
        self.check = load_prompt("qa_check")
        self.format_rules = load_prompt("qa_format_rules").user
        self.version = f"{self.generate.version}+{self.check.version}"
        self.report = SynthReport()
        self._encode_lock = asyncio.Lock()
        self._stop = False

    async def run(self) -> SynthReport:
        self.file.repair()
        existing = self.file.read()
        leaves = self.taxonomy.leaf_paths()
        stray = sorted({it.path for it in existing} - set(leaves))
        if stray:
            raise DataError(
                f"{self.file.path} has items for leaves that are not in the taxonomy "
                f"({', '.join(stray[:3])}{', ...' if len(stray) > 3 else ''}); "
                "write to a new --out file or restore the taxonomy they came from"
            )
        self.report = SynthReport(leaves=len(leaves), items_before=len(existing))
        self._save_rows(existing)
        self.dedup = Deduper(
            self.encoder, self.settings.dedup_threshold, self.settings.dedup_threshold
        )
        self.in_file: dict[str, SynthItem] = {it.id: it for it in existing}
        by_leaf: dict[str, list[SynthItem]] = {}
        for item in existing:
            by_leaf.setdefault(item.path, []).append(item)
        for leaf, items in by_leaf.items():
            self.dedup.add(leaf, self.encoder.encode([it.query for it in items]))
        self.leaf_count = {leaf: len(by_leaf.get(leaf, [])) for leaf in leaves}
        self._stop = False

        def stop(_: BaseException) -> None:
            self._stop = True  # the other leaves finish their current batch, then stop

        await run_all((self._leaf(leaf) for leaf in leaves), on_error=stop)
        if self.out.suffix == ".parquet":
            from trouter.synth.items import write_parquet

            write_parquet(self.file.read(), self.out)
        return self.report

    # ------------------------------------------------------------------ one leaf
    def _leaf_context(self, leaf: str) -> str:
        return path_profile(self.profile, nodes_on_path(self.taxonomy, leaf))

    async def _leaf(self, leaf: str) -> None:
        need = self.profile.items_per_leaf
        if self.leaf_count[leaf] >= need:
            self.report.leaves_done_before += 1
            return
        size = self.settings.batch_size
        max_batches = math.ceil(math.ceil(need / size) * self.settings.max_batch_factor)
        accepted: list[str] = []  # this replay's accepted queries, in order (the avoid list)
        seen: set[str] = set()
        context = self._leaf_context(leaf)
        for batch in range(max_batches):
            if self.leaf_count[leaf] >= need or self._stop:
                break
            language = self.profile.languages[batch % len(self.profile.languages)]
            items = await self._draft(leaf, context, batch, size, language, accepted)
            if items:
                items = await self._answerable(leaf, items)
            if items:
                vectors = await self._encode([it.query for it in items])
            else:
                vectors = None
            # No await between the dedup decision and the write: a kill cannot separate them.
            new = self._accept(leaf, items, vectors, accepted, seen, need)
            handle = self.file.write(new)  # in the page cache now: a killed process loses nothing
            if handle is not None:
                try:  # and on disk once fsync returns (off the event loop)
                    await asyncio.to_thread(os.fsync, handle.fileno())
                finally:
                    handle.close()
            self._save_rows(new)
            self.report.items_new += len(new)
            self.report.batches += 1
            if self.on_batch is not None:
                self.on_batch(leaf, len(new))
        if self.leaf_count[leaf] < need and not self._stop:
            self.report.short_leaves.append(leaf)

    async def _draft(
        self,
        leaf: str,
        context: str,
        batch: int,
        size: int,
        language: str,
        accepted: Sequence[str],
    ) -> list[SynthItem]:
        formats = self.settings.answer_formats
        avoid = ""
        if accepted:
            shown = "\n".join(f"- {q}" for q in accepted[-AVOID_LAST:])
            avoid = f"They must differ in substance from these existing queries:\n{shown}\n"
        meta = {"path": leaf, "n": size, "batch": batch, "language": language, "formats": formats}
        result = await self.client.structured(
            self.spec,
            self.generate.render(
                meta=meta,
                description=self.profile.description.strip(),
                audience=self.profile.audience.strip() or "the deployment's users",
                path_profile=context,
                n=size,
                language=language,
                avoid=avoid,
                formats=", ".join(formats),
                format_rules=self.format_rules,
            ),
            QABatch,
            purpose="qa.generate",
            temperature=self.settings.temperature,
            max_tokens=self.settings.max_tokens,
        )
        if isinstance(result, StructuredFailure):
            self.report.structured_failures += 1
            self.report.last_error = result.error
            return []
        items = []
        for draft in result.value.items[:size]:
            item = self._item(draft, leaf, language, batch)
            if item is None:
                self.report.invalid += 1
            else:
                items.append(item)
        return items

    def _item(self, draft: QADraft, leaf: str, language: str, batch: int) -> SynthItem | None:
        fmt = draft.answer_format.strip().lower().replace("-", "_").replace(" ", "_")
        if fmt not in self.settings.answer_formats:
            return None
        query = (
            format_choices(draft.query, draft.choices) if fmt == "multiple_choice" else draft.query
        )
        try:
            return SynthItem(
                query=query.strip(),
                reference=draft.reference.strip(),
                answer_format=fmt,  # type: ignore[arg-type]  # checked against the known formats
                choices=[c.strip() for c in draft.choices] if fmt == "multiple_choice" else [],
                tests=draft.tests if fmt == "code" else "",
                entry_point=draft.entry_point.strip() if fmt == "code" else "",
                language=language,
                path=leaf,
                generator=self.spec.name,
                prompt_version=self.version,
                meta={"batch": batch},
            )
        except ValidationError:
            return None

    async def _answerable(self, leaf: str, items: list[SynthItem]) -> list[SynthItem]:
        if not self.settings.answerability_check:
            return items
        shown = [
            {
                "index": i,
                "query": it.query,
                "answer_format": it.answer_format,
                "reference": it.reference,
                **({"tests": it.tests} if it.tests else {}),
            }
            for i, it in enumerate(items)
        ]
        result = await self.client.structured(
            self.spec,
            self.check.render(
                meta={"path": leaf, "n": len(items)},
                description=self.profile.description.strip(),
                path=leaf,
                items=json.dumps(shown, ensure_ascii=False),
            ),
            Verdicts,
            purpose="qa.check",
            temperature=0.0,
            max_tokens=200 + 80 * len(items),
        )
        if isinstance(result, StructuredFailure):
            self.report.structured_failures += 1
            self.report.unchecked += len(items)
            return [it.model_copy(update={"meta": {**it.meta, "checked": False}}) for it in items]
        verdicts = {v.index: v for v in result.value.verdicts}
        kept = []
        for i, item in enumerate(items):
            verdict = verdicts.get(i)
            if verdict is None:
                self.report.unchecked += 1
                kept.append(item.model_copy(update={"meta": {**item.meta, "checked": False}}))
            elif verdict.answerable:
                kept.append(item.model_copy(update={"meta": {**item.meta, "checked": True}}))
            else:
                self.report.unanswerable += 1
        return kept

    async def _encode(self, texts: list[str]) -> Any:
        async with self._encode_lock:  # one encoder call at a time; off the event loop
            return await asyncio.to_thread(self.encoder.encode, texts)

    def _accept(
        self,
        leaf: str,
        items: list[SynthItem],
        vectors: Any,
        accepted: list[str],
        seen: set[str],
        need: int,
    ) -> list[SynthItem]:
        if not items:
            return []
        fresh = [i for i, it in enumerate(items) if it.id not in self.in_file and it.id not in seen]
        verdicts = dict(zip(fresh, self.dedup.check(leaf, vectors[fresh]), strict=True))
        new: list[SynthItem] = []
        new_rows = []
        for i, item in enumerate(items):
            if item.id in seen:  # the same query twice in this leaf
                self.report.duplicates_leaf += 1
                continue
            seen.add(item.id)
            if item.id in self.in_file:  # written before (an earlier run): replayed as is
                accepted.append(item.query)
                continue
            verdict = verdicts[i]
            if not verdict.keep:
                if verdict.reason == "global":
                    self.report.duplicates_global += 1
                else:
                    self.report.duplicates_leaf += 1
                continue
            if self.leaf_count[leaf] >= need:
                break
            new.append(item)
            new_rows.append(i)
            accepted.append(item.query)
            self.in_file[item.id] = item
            self.leaf_count[leaf] += 1
        if new_rows:
            self.dedup.add(leaf, vectors[new_rows])
        return new

    def _save_rows(self, items: Sequence[SynthItem]) -> None:
        """Insert the items' store rows that are not there yet (idempotent, one transaction)."""
        if self.store is None or not items:
            return
        run = self.profile.run_id
        with self.store.engine.begin() as conn:
            present: set[str] = set()
            ids = [item.id for item in items]
            for start in range(0, len(ids), 500):
                present.update(
                    conn.scalars(
                        select(SynthItemRow.id).where(
                            SynthItemRow.run == run, SynthItemRow.id.in_(ids[start : start + 500])
                        )
                    )
                )
            rows = [
                {
                    "run": run,
                    "id": item.id,
                    "path": item.path,
                    "answer_format": item.answer_format,
                    "query": item.query,
                    "item": item.model_dump(mode="json"),
                    "created_at": utcnow(),
                }
                for item in items
                if item.id not in present
            ]
            if rows:
                conn.execute(insert(SynthItemRow), rows)


async def synthesize(
    profile: TaskProfile,
    taxonomy: Taxonomy,
    client: LLMClient,
    out: str | Path,
    *,
    store: Store | None = None,
    encoder: Encoder | str | None = None,
    on_batch: Callable[[str, int], None] | None = None,
) -> SynthReport:
    """Synthesise items for every leaf of `taxonomy` into `out` (see `Synthesizer`)."""
    return await Synthesizer(
        profile, taxonomy, client, out, store=store, encoder=encoder, on_batch=on_batch
    ).run()
