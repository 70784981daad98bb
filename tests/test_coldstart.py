"""The cold-start pipeline's bookkeeping, without any server: what a rerun skips (and why),
what the plan estimates, how the judge is chosen, and the one-line errors for bad options.
The end-to-end behaviour against local servers is in test_coldstart_e2e.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trouter.cli import run
from trouter.coldstart import Coldstart, ColdstartOptions
from trouter.coldstart.estimate import labels_estimate, shaped_taxonomy
from trouter.coldstart.results import TaxonomyResult
from trouter.errors import ConfigError, DataError
from trouter.label.runner import LabelOptions
from trouter.profile import TaskProfile
from trouter.synth.items import ItemsFile, SynthItem
from trouter.taxonomy import Taxonomy, TaxonomyNode

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "support-profile.yaml"


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    """A profile with a generator, a judge and a three-model pool; nothing listens anywhere."""
    models = [
        {"name": n, "base_url": "http://127.0.0.1:9/v1", "input_price": p, "output_price": 2 * p}
        for n, p in (("gen", 1.0), ("grader", 0.5), ("small", 0.1), ("big", 10.0))
    ]
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"models": models}))
    (tmp_path / "pool.yaml").write_text(yaml.safe_dump({"models": models[2:]}))
    profile = {
        "name": "unit",
        "description": "A support assistant for a small SaaS product.",
        "levels": [
            {"name": "domain", "min_nodes": 2, "max_nodes": 4},
            {"name": "difficulty", "nodes": ["easy", "hard"]},
        ],
        "generator": "gen",
        "pool": "models.yaml",
        "items_per_leaf": 5,
        "budget_usd": 3.0,
        "synthesis": {"answer_formats": ["numeric", "free_text"], "encoder": "hashing:64"},
    }
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump(profile))
    return tmp_path


def job(cfg: Path, **options: object) -> Coldstart:
    opts = {"out": cfg / "run", "pool": cfg / "pool.yaml", **options}
    return Coldstart(cfg / "profile.yaml", ColdstartOptions(**opts))  # type: ignore[arg-type]


def write_taxonomy(path: Path, domains: tuple[str, ...] = ("billing", "access")) -> Taxonomy:
    tree = Taxonomy(
        levels=["domain", "difficulty"],
        roots=[
            TaxonomyNode(name=d, children=[TaxonomyNode(name="easy"), TaxonomyNode(name="hard")])
            for d in domains
        ],
    )
    tree.save(path)
    return tree


def item(path: str, query: str, fmt: str = "numeric") -> SynthItem:
    reference = "4" if fmt == "numeric" else "A full answer."
    return SynthItem(
        query=query,
        reference=reference,
        answer_format=fmt,  # type: ignore[arg-type]
        path=path,
        generator="gen",
        prompt_version="test/1",
    )


def test_a_fresh_directory_plans_every_step_with_a_cost_and_writes_nothing(cfg):
    plan = job(cfg).plan()
    assert [(s.step, s.status) for s in plan.steps] == [
        ("taxonomy", "to do"),
        ("items", "to do"),
        ("labels", "to do"),
        ("router", "to do"),
        ("report", "to do"),
        ("summary", "to do"),
    ]
    by_step = {s.step: s for s in plan.steps}
    assert by_step["taxonomy"].cost > 0 and by_step["taxonomy"].models == ("gen",)
    # About (2+4)/2 = 3 domains x 2 difficulties = 6 leaves before the taxonomy exists.
    assert "about 6 leaves x 5 items" in by_step["items"].note
    assert by_step["items"].calls_max > by_step["items"].calls
    assert by_step["labels"].calls == 6 * 5 * 2 + 6 * 5 // 2 * 2  # answers + judge grades
    assert by_step["labels"].models == ("small", "big", "gen")  # the generator judges by default
    assert 0 < plan.cost < plan.cost_max
    assert plan.budget_usd == 3.0 and plan.spent_before_usd == 0.0
    assert not (cfg / "run").exists()


def test_a_step_is_done_when_its_inputs_are_unchanged_and_its_outputs_exist(cfg):
    j = job(cfg)
    write_taxonomy(j.paths.taxonomy)
    j.state.mark("taxonomy", j.fingerprint("taxonomy"), TaxonomyResult(leaves=4, levels=["d"]))
    assert j.status("taxonomy") == ("done", "output complete")
    assert j.status("items") == ("to do", "new")
    # A hand edit of the taxonomy keeps the taxonomy step done but changes what items read.
    items_before = j.fingerprint("items")
    write_taxonomy(j.paths.taxonomy, ("billing", "access", "api"))
    assert j.status("taxonomy")[0] == "done"
    assert j.fingerprint("items") != items_before
    # A deleted output, or a changed profile field the step reads, redoes it.
    j.paths.taxonomy.unlink()
    assert j.status("taxonomy")[0] == "to do"


def test_force_and_from_step_redo_steps_even_when_complete(cfg):
    j = job(cfg, force=("items",), from_step="report")
    write_taxonomy(j.paths.taxonomy)
    j.state.mark("taxonomy", j.fingerprint("taxonomy"), TaxonomyResult(leaves=4, levels=["d"]))
    statuses = {step: status for step, status, _ in j.statuses()}
    assert statuses["taxonomy"] == "done"
    assert j.status("items") == ("to do", "forced")
    assert j.status("report") == ("to do", "forced")
    assert j.status("router", upstream_pending=True) == ("to do", "after the steps above")


def test_an_items_file_left_by_a_kill_makes_the_step_a_resume_and_counts_in_the_plan(cfg):
    j = job(cfg)
    write_taxonomy(j.paths.taxonomy)
    j.state.mark("taxonomy", j.fingerprint("taxonomy"), TaxonomyResult(leaves=4, levels=["d"]))
    ItemsFile(j.paths.items).append([item("billing/easy", f"What is {i} + 2?") for i in range(5)])
    assert j.status("items") == ("resume", "interrupted before")
    plan = {s.step: s for s in j.plan().steps}
    assert "4 leaves x 5 items; 5 written already" in plan["items"].note
    assert plan["labels"].note.startswith("20 items x 2 models")  # from the real taxonomy


def test_labelling_estimate_skips_stored_observations_and_counts_judge_calls(cfg):
    profile = TaskProfile.load(cfg / "profile.yaml")
    j = job(cfg)
    items = [item("a/easy", "What is 2 + 2?"), item("a/hard", "Explain SSO.", "free_text")]
    options = LabelOptions(max_tokens=100)
    full = labels_estimate(profile, j.pool, j.judge, options, "to do", items, 0)
    assert full.calls == 2 * 2 + 2  # every model answers both; both free-text answers are graded
    done = {(items[0].id, "small"), (items[1].id, "small")}
    part = labels_estimate(profile, j.pool, j.judge, options, "resume", items, 0, done)
    assert part.calls == 2 + 1 and part.cost < full.cost
    assert part.cost_max >= part.cost


def test_shaped_taxonomy_has_the_typical_and_the_largest_number_of_leaves():
    profile = TaskProfile.load(EXAMPLE)  # domain 4-7 x subcategory 2-4 x 3 difficulties
    assert len(shaped_taxonomy(profile).leaf_paths()) == 6 * 3 * 3
    assert len(shaped_taxonomy(profile, largest=True).leaf_paths()) == 7 * 4 * 3


def test_the_judge_is_the_option_then_the_profile_then_the_generator(cfg):
    assert job(cfg).judge is not None and job(cfg).judge.name == "gen"
    assert job(cfg, judge="grader").judge.name == "grader"  # type: ignore[union-attr]
    raw = yaml.safe_load((cfg / "profile.yaml").read_text())
    (cfg / "profile.yaml").write_text(yaml.safe_dump({**raw, "judge": "grader"}))
    assert job(cfg).judge.name == "grader"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="'nobody' is not a model of the pool"):
        job(cfg, judge="nobody")
    raw["synthesis"]["answer_formats"] = ["numeric"]  # nothing to grade: no judge needed
    (cfg / "profile.yaml").write_text(yaml.safe_dump(raw))
    assert job(cfg).judge is None


def test_a_directory_of_another_profile_is_refused(cfg):
    j = job(cfg)
    j.state.mark("taxonomy", "x", TaxonomyResult(leaves=1, levels=["d"]))
    raw = yaml.safe_load((cfg / "profile.yaml").read_text())
    (cfg / "profile.yaml").write_text(yaml.safe_dump({**raw, "name": "other"}))
    with pytest.raises(ConfigError, match="holds a cold start of profile 'unit'"):
        job(cfg)
    (cfg / "run" / "coldstart.json").write_text("{not json")
    with pytest.raises(DataError, match="not a readable cold-start state file"):
        job(cfg)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--force", "training"], "--force: unknown step 'training'"),
        (["--from-step", "nope"], "--from-step: unknown step 'nope'"),
        (["--holdout", "0.9"], "--holdout must be in (0, 0.5]"),
        (["--budget", "-1"], "--budget must be a positive number"),
        (["--encoder", "bert"], "unknown encoder 'bert'"),
        (["--judge", "nobody"], "--judge 'nobody' is not a model of the pool"),
    ],
)
def test_bad_options_are_one_line_errors_with_exit_2(cfg, capsys, extra, message):
    args = ["coldstart", str(cfg / "profile.yaml"), "--out", str(cfg / "run"), *extra]
    assert run(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err


def test_a_missing_profile_or_pool_is_a_one_line_error(cfg, capsys):
    assert run(["coldstart", str(cfg / "nope.yaml"), "--out", str(cfg / "run")]) == 2
    assert "task profile not found" in capsys.readouterr().err
    args = ["coldstart", str(cfg / "profile.yaml"), "--out", str(cfg / "run")]
    assert run([*args, "--pool", str(cfg / "nope.yaml")]) == 2
    assert "pool file not found" in capsys.readouterr().err
