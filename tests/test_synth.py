"""QA synthesis: items per leaf, formats, dedup, answerability, durable output, faults."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from trouter.llm import BudgetExceeded, LLMCallError, LLMClient, RetryPolicy
from trouter.profile import TaskProfile
from trouter.store import Store, SynthItemRow
from trouter.synth.builder import build_taxonomy
from trouter.synth.items import ItemsFile, read_items
from trouter.synth.qa import synthesize
from trouter.synth.testing import FakeGenerator, profile_against
from trouter.taxonomy import Taxonomy
from trouter.testing import Drop, FakeOpenAI, FakeRequest, Hang, Malformed, Reply, Status

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "support-profile.yaml"
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
ENCODER = "hashing:256"
SMALL_LEVELS = [
    {"name": "domain", "seeds": ["Billing"], "min_nodes": 2, "max_nodes": 2},
    {"name": "difficulty", "nodes": ["easy", "hard"]},
]


@pytest.fixture
def server():
    with FakeOpenAI(FakeGenerator()) as s:
        yield s


def small_profile(server: FakeOpenAI, tmp_path: Path, **overrides) -> TaskProfile:
    synthesis = {"batch_size": 2, "encoder": ENCODER, **overrides.pop("synthesis", {})}
    fields = {"levels": SMALL_LEVELS, "items_per_leaf": 4, "synthesis": synthesis, **overrides}
    path = profile_against(EXAMPLE, server.url, tmp_path / "cfg", timeout_s=0.5, **fields)
    return TaskProfile.load(path)


def by_id(path: Path) -> dict[str, object]:
    """Items keyed by id (concurrent leaves finish in any order; the set is what must match)."""
    items = read_items(path)
    assert len({i.id for i in items}) == len(items), "duplicate items"
    return {i.id: i for i in items}


async def build(profile: TaskProfile, store: Store) -> Taxonomy:
    async with LLMClient(store) as client:
        taxonomy, _ = await build_taxonomy(profile, client)
    return taxonomy


async def run_synthesis(profile, taxonomy, out, store, **client_kw):
    async with LLMClient(store, retry=FAST, **client_kw) as client:
        report = await synthesize(profile, taxonomy, client, out, store=store)
    return report, client


async def test_the_example_pipeline_fills_every_leaf_with_items_whose_path_exists(server, tmp_path):
    path = profile_against(
        EXAMPLE,
        server.url,
        tmp_path / "cfg",
        items_per_leaf=2,
        synthesis={"batch_size": 2, "encoder": ENCODER},
    )
    profile = TaskProfile.load(path)
    store = Store("sqlite://")
    taxonomy = await build(profile, store)
    report, _ = await run_synthesis(profile, taxonomy, tmp_path / "items.jsonl", store)
    items = read_items(tmp_path / "items.jsonl")
    assert len(items) == 2 * len(taxonomy.leaf_paths()) == report.items_new
    assert all(taxonomy.is_leaf(item.path) for item in items)
    assert Counter(item.path for item in items) == dict.fromkeys(taxonomy.leaf_paths(), 2)
    assert report.short_leaves == []


async def test_items_carry_format_specific_fields_provenance_and_store_rows(server, tmp_path):
    profile = small_profile(server, tmp_path)
    store = Store("sqlite://")
    taxonomy = await build(profile, store)
    await run_synthesis(profile, taxonomy, tmp_path / "items.jsonl", store)
    items = read_items(tmp_path / "items.jsonl")
    by_format = {item.answer_format: item for item in items}
    assert set(by_format) == {"free_text", "exact", "numeric", "multiple_choice", "code"}
    code = by_format["code"]
    assert code.entry_point == "double" and "assert double(2) == 4" in code.tests
    mc = by_format["multiple_choice"]
    assert mc.reference == "B" and len(mc.choices) == 3 and "B) second option" in mc.query
    assert float(by_format["numeric"].reference) >= 0
    for item in items:
        assert item.generator == "gpt-4o"
        assert item.prompt_version == "qa-generate/1+qa-check/1"
        assert item.meta["checked"] is True and item.language == "en"
    with store.session() as s:
        rows = s.scalars(select(SynthItemRow)).all()
    assert {r.id for r in rows} == {i.id for i in items}
    assert {r.run for r in rows} == {"profile:acme-support"}


async def test_near_duplicates_and_unanswerable_items_are_dropped_and_replaced(server, tmp_path):
    server.handler = FakeGenerator(
        duplicate_every=3, global_duplicate_every=8, unanswerable_every=5
    )
    profile = small_profile(server, tmp_path, items_per_leaf=6, synthesis={"max_batch_factor": 3})
    store = Store("sqlite://")
    taxonomy = await build(profile, store)
    report, _ = await run_synthesis(profile, taxonomy, tmp_path / "items.jsonl", store)
    items = read_items(tmp_path / "items.jsonl")
    assert report.duplicates_leaf > 0 and report.duplicates_global > 0
    assert report.unanswerable > 0
    assert not any("UNANSWERABLE" in item.query for item in items)
    assert len({item.query for item in items}) == len(items)
    assert Counter(item.path for item in items) == dict.fromkeys(taxonomy.leaf_paths(), 6)


async def test_languages_alternate_by_batch(server, tmp_path):
    profile = small_profile(server, tmp_path, languages=["en", "de"])
    store = Store("sqlite://")
    taxonomy = await build(profile, store)
    await run_synthesis(profile, taxonomy, tmp_path / "items.jsonl", store)
    counts = Counter(item.language for item in read_items(tmp_path / "items.jsonl"))
    assert counts["en"] == counts["de"] > 0


async def test_parquet_output_matches_its_jsonl_journal(server, tmp_path):
    profile = small_profile(server, tmp_path)
    store = Store("sqlite://")
    taxonomy = await build(profile, store)
    await run_synthesis(profile, taxonomy, tmp_path / "items.parquet", store)
    assert read_items(tmp_path / "items.parquet") == read_items(tmp_path / "items.jsonl")


FAULTS = (
    Status(429, retry_after=0.05),
    Status(500),
    Malformed(),
    Reply(content='{"items": "not a list"}'),  # JSON of the wrong shape
    Hang(3.0),  # past the 0.5 s timeout
    Drop(),
    Reply(content="Sure! Here are your questions."),  # not JSON at all
    Status(503),
)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_misbehaving_server_still_yields_the_same_items(server, tmp_path, stream):
    profile = small_profile(server, tmp_path)
    taxonomy = await build(profile, Store("sqlite://"))
    await run_synthesis(profile, taxonomy, tmp_path / "clean.jsonl", Store("sqlite://"))
    server.script(*FAULTS)
    faulty_store = Store("sqlite://")
    report, client = await run_synthesis(
        profile, taxonomy, tmp_path / "faulty.jsonl", faulty_store, stream=stream
    )
    assert by_id(tmp_path / "faulty.jsonl") == by_id(tmp_path / "clean.jsonl")
    assert client.usage.retries >= 6 and client.usage.failures == 0
    assert report.structured_failures == 0  # the bad replies were repaired by re-asking


async def test_retries_exhausted_stop_with_a_clear_error_and_a_rerun_completes(server, tmp_path):
    profile = small_profile(server, tmp_path)
    store = Store("sqlite://")
    taxonomy = await build(profile, store)
    await run_synthesis(profile, taxonomy, tmp_path / "clean.jsonl", Store("sqlite://"))
    generator = FakeGenerator()
    broken_leaf = taxonomy.leaf_paths()[-1]

    def down_for_one_leaf(req: FakeRequest):
        if f'"path": "{broken_leaf}"' in req.prompt_text:
            return Status(502, message="bad gateway")
        return generator(req)

    server.handler = down_for_one_leaf
    out = tmp_path / "items.jsonl"
    with pytest.raises(LLMCallError, match=r"'gpt-4o'.*after 4 attempts") as info:
        await run_synthesis(profile, taxonomy, out, store)
    assert info.value.kind.value == "server"
    written = read_items(out)
    assert all(item.path != broken_leaf for item in written)
    server.handler = generator
    await run_synthesis(profile, taxonomy, out, store)
    final = read_items(out)
    assert final[: len(written)] == written  # nothing already written was lost or rewritten
    assert by_id(out) == by_id(tmp_path / "clean.jsonl")


async def test_the_budget_stops_the_run_and_a_larger_budget_finishes_it(server, tmp_path):
    profile = small_profile(server, tmp_path, synthesis={"max_tokens": 200})
    store = Store("sqlite://")
    taxonomy = await build(profile, store)
    _, clean = await run_synthesis(profile, taxonomy, tmp_path / "clean.jsonl", Store("sqlite://"))
    full_cost = clean.usage.cost_usd
    out = tmp_path / "items.jsonl"
    with pytest.raises(BudgetExceeded, match="everything done so far is saved"):
        await run_synthesis(
            profile, taxonomy, out, store, budget_usd=full_cost / 2, run=profile.run_id
        )
    before = ItemsFile(out).read()
    assert 0 < len(before) < 4 * len(taxonomy.leaf_paths())
    # The job's spending so far counts against the next cap: the same cap stops at once.
    with pytest.raises(BudgetExceeded):
        await run_synthesis(
            profile, taxonomy, out, store, budget_usd=full_cost / 2, run=profile.run_id
        )
    report, client = await run_synthesis(
        profile, taxonomy, out, store, budget_usd=10 * full_cost, run=profile.run_id
    )
    assert client.usage.cache_hits > 0
    assert read_items(out)[: len(before)] == before
    assert by_id(out) == by_id(tmp_path / "clean.jsonl")
    assert report.items_before == len(before)


async def test_items_for_leaves_missing_from_the_taxonomy_are_refused(server, tmp_path):
    profile = small_profile(server, tmp_path)
    store = Store("sqlite://")
    taxonomy = await build(profile, store)
    out = tmp_path / "items.jsonl"
    await run_synthesis(profile, taxonomy, out, store)
    other = Taxonomy.from_task_names(["x/easy", "y/hard"], levels=["domain", "difficulty"])
    with pytest.raises(Exception, match="not in the taxonomy"):
        await run_synthesis(profile, other, out, store)
