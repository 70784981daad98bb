"""The taxonomy builder: generate -> critique/revise -> A/B, level by level, from examples/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trouter.cli import run
from trouter.llm import LLMClient, RetryPolicy
from trouter.profile import TaskProfile
from trouter.prompts import parse_marker
from trouter.store import Store
from trouter.synth.builder import TaxonomyBuilder, build_taxonomy, clean_nodes
from trouter.synth.schemas import NodeDraft
from trouter.synth.testing import FakeGenerator, profile_against
from trouter.taxonomy import Taxonomy
from trouter.testing import FakeOpenAI, FakeRequest, Reply

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "support-profile.yaml"


@pytest.fixture
def server():
    with FakeOpenAI(FakeGenerator()) as s:
        yield s


@pytest.fixture
def profile(server, tmp_path) -> TaskProfile:
    return TaskProfile.load(profile_against(EXAMPLE, server.url, tmp_path))


def kinds(server: FakeOpenAI) -> list[str]:
    out = []
    for req in server.completions:
        found = parse_marker("\n".join(str(m["content"]) for m in req.messages))
        out.append(found[0].split("/")[0] if found else "?")
    return out


async def test_a_taxonomy_from_the_example_has_the_levels_and_respects_the_limits(server, profile):
    async with LLMClient(Store("sqlite://")) as client:
        taxonomy, report = await build_taxonomy(profile, client)
    assert taxonomy.levels == ["domain", "subcategory", "difficulty"]
    assert taxonomy.depth() == 3
    limits = {lv.name: (lv.min_nodes, lv.max_nodes) for lv in profile.levels}
    for depth, level in enumerate(taxonomy.levels):
        lo, hi = limits[level]
        parents = [None] if depth == 0 else taxonomy.nodes_at_level(depth - 1)
        for parent in parents:
            children = taxonomy.roots if parent is None else taxonomy.node(parent).children
            assert lo <= len(children) <= hi, (level, parent)  # the fake proposes max + 2
    names = [n.name for n in taxonomy.roots]
    assert {"Billing and plans", "Account and access", "API and integrations"} <= set(names)
    for path in taxonomy.leaf_paths():
        assert path.rsplit("/", 1)[-1] in ("easy", "medium", "hard")
        node = taxonomy.node(path)
        assert node.definition and node.example
    assert report.structured_failures == 0
    assert all(lv.rounds for lv in report.levels)


async def test_each_set_is_critiqued_until_stable_and_revisions_win_a_blind_ab(server, profile):
    async with LLMClient(Store("sqlite://")) as client:
        taxonomy, report = await build_taxonomy(profile, client)
    # One parent at the top, 7 domains below: each is generated once, critiqued until two
    # rounds pass unchanged (round 1 revises, rounds 2 and 3 do not), compared once.
    calls = kinds(server)
    generated_parents = 1 + len(taxonomy.roots)
    assert calls.count("taxonomy-generate") == generated_parents
    assert calls.count("taxonomy-critique") == 3 * generated_parents
    assert calls.count("taxonomy-compare") == generated_parents
    assert report.levels[0].revisions_kept == 1 and report.levels[0].rounds == [3]
    assert "Sharpened" in taxonomy.roots[0].definition  # the revised set won
    # The A/B order is randomised per parent: the revision is shown first in some prompts only.
    firsts = []
    for req in server.completions:
        text = req.messages[-1]["content"]
        if "Set A:" in text:
            set_a = text.split("Set A:\n", 1)[1].split("\n", 1)[0]
            firsts.append("Sharpened" in set_a)
    assert any(firsts) and not all(firsts)


async def test_children_prompts_carry_the_full_profile_of_every_level_above(server, profile):
    async with LLMClient(Store("sqlite://")) as client:
        taxonomy, _ = await build_taxonomy(profile, client)
    domain = taxonomy.roots[0]
    prompts = [
        r.messages[-1]["content"]
        for r in server.completions
        if f'"parent": "{domain.name}"' in r.messages[-1]["content"]
    ]
    assert prompts
    for text in prompts:
        assert f"- domain: {domain.name}" in text
        assert profile.description.split()[1] in text  # the deployment description
        assert "Taxonomy levels, from the top: domain > subcategory > difficulty" in text


async def test_a_rebuild_is_served_from_the_cache_and_is_identical(server, profile):
    store = Store("sqlite://")
    async with LLMClient(store) as client:
        first, _ = await build_taxonomy(profile, client)
    sent = len(server.completions)
    async with LLMClient(store) as client:
        again, _ = await build_taxonomy(profile, client)
    assert again == first
    assert len(server.completions) == sent
    assert client.usage.paid_calls == 0 and client.usage.cache_hits == sent


async def test_a_parent_whose_set_never_validates_stays_a_leaf_and_is_reported(server, profile):
    generator = FakeGenerator()

    def broken_for_one_domain(req: FakeRequest) -> Reply:
        if '"parent": "Billing and plans"' in req.prompt_text:
            return Reply(content='{"nodes": "not a list"}')
        return generator(req)

    server.handler = broken_for_one_domain
    client = LLMClient(Store("sqlite://"), retry=RetryPolicy(base_delay=0.01))
    taxonomy, report = await TaxonomyBuilder(profile, client).build()
    await client.aclose()
    assert report.levels[1].childless == ["Billing and plans"]
    assert taxonomy.is_leaf("Billing and plans")
    assert report.structured_failures == 1 and client.usage.structured_failures == 1


def test_clean_nodes_tidies_names_keeps_seeds_and_cuts_to_the_limit():
    profile = TaskProfile.from_dict(
        {
            "name": "t",
            "description": "A test deployment description that is long enough.",
            "levels": [{"name": "domain", "max_nodes": 3, "seeds": ["Billing"]}],
            "generator": {"name": "g"},
        }
    )
    drafts = [
        NodeDraft(name=" Account /  Access "),
        NodeDraft(name="account - access"),
        NodeDraft(name="API"),
        NodeDraft(name="Mobile"),
        NodeDraft(name="Data"),
    ]
    names = [n.name for n in clean_nodes(drafts, profile.levels[0], None)]
    assert names == ["Account - Access", "API", "Billing"]


def test_cli_builds_saves_and_shows_a_taxonomy(server, tmp_path, capsys):
    profile_path = profile_against(EXAMPLE, server.url, tmp_path / "cfg")
    out = tmp_path / "run" / "taxonomy.json"
    assert run(["taxonomy", "build", str(profile_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cached responses reused: 0" in printed and "84 leaves" in printed
    assert (tmp_path / "run" / "trouter.sqlite").is_file()  # the store sits by the output
    taxonomy = Taxonomy.load(out)
    assert len(taxonomy.leaf_paths()) == 84 and json.loads(out.read_text())["levels"]
    assert run(["taxonomy", "show", str(out), "--examples"]) == 0
    shown = capsys.readouterr().out
    assert "Billing and plans" in shown and "easy" in shown
    # Rebuilding costs nothing: every response comes from the store.
    assert run(["taxonomy", "build", str(profile_path), "--out", str(out)]) == 0
    assert "cached responses reused: 40" in capsys.readouterr().out


def test_cli_dry_run_plans_without_calling(server, tmp_path, capsys):
    profile_path = profile_against(EXAMPLE, server.url, tmp_path)
    code = run(
        ["taxonomy", "build", str(profile_path), "--out", str(tmp_path / "t.yaml"), "--dry-run"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "total" in printed and "budget cap $15.00" in printed
    assert server.requests == [] and not (tmp_path / "t.yaml").exists()
