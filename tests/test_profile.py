"""The task profile: the example validates, and every kind of mistake gets a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trouter.errors import ConfigError
from trouter.profile import TaskProfile

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

MINIMAL = {
    "name": "tiny",
    "description": "A maths tutor for secondary-school students.",
    "levels": [{"name": "domain", "max_nodes": 3}, {"name": "difficulty", "nodes": ["easy"]}],
    "generator": {"name": "gen", "model": "m", "base_url": "http://127.0.0.1:1/v1"},
}


def write(tmp_path: Path, data: dict, name: str = "profile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_example_profile_loads_and_resolves_its_generator_from_the_pool():
    profile = TaskProfile.load(EXAMPLES / "support-profile.yaml")
    assert profile.level_names == ["domain", "subcategory", "difficulty"]
    spec = profile.generator_spec()
    assert spec.name == "gpt-4o" and spec.api_key_env == "OPENAI_API_KEY"
    assert profile.levels[2].fixed and profile.levels[2].max_nodes == 3
    assert profile.levels[0].seeds_for(None)[0].name == "Billing and plans"
    assert profile.budget_usd == 15.0 and profile.run_id == "profile:acme-support"


def test_a_minimal_profile_gets_sensible_defaults(tmp_path):
    profile = TaskProfile.load(write(tmp_path, MINIMAL))
    assert profile.languages == ["en"] and profile.items_per_leaf == 10
    assert profile.synthesis.dedup_threshold == 0.9
    assert profile.taxonomy.stable_rounds == 2
    assert profile.levels[1].nodes[0].name == "easy"  # plain strings become nodes


def test_seeds_can_target_one_parent_by_path_or_name():
    profile = TaskProfile.from_dict(
        {
            **MINIMAL,
            "levels": [
                {"name": "domain", "seeds": ["Algebra"]},
                {"name": "topic", "seeds": {"Algebra": ["Linear equations"], "Geometry": []}},
            ],
        }
    )
    topic = profile.levels[1]
    assert [s.name for s in topic.seeds_for("Algebra")] == ["Linear equations"]
    assert [s.name for s in topic.seeds_for("Maths/Algebra")] == ["Linear equations"]
    assert topic.seeds_for("Geometry") == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "has spaces"}, "name"),
        ({"description": "short"}, "description"),
        ({"levels": []}, "levels"),
        (
            {"levels": [{"name": "a", "min_nodes": 5, "max_nodes": 2}]},
            "min_nodes (5) > max_nodes (2)",
        ),
        ({"levels": [{"name": "a"}, {"name": "A"}]}, "repeated level names a"),
        ({"levels": [{"name": "a", "seeds": {"x": ["y"]}}]}, "top level has no parent"),
        ({"levels": [{"name": "a", "max_nodes": 1, "seeds": ["x", "y"]}]}, "2 seeds"),
        ({"synthesis": {"answer_formats": ["essay"]}}, "unknown answer formats essay"),
        ({"generator": "gpt-4o"}, "has no 'pool:' file"),
        ({"budget_usd": -1}, "budget_usd"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_profiles_are_rejected_with_a_message_naming_the_field(tmp_path, change, message):
    with pytest.raises(ConfigError, match=r"profile\.yaml") as info:
        TaskProfile.load(write(tmp_path, {**MINIMAL, **change}))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_generator_missing_from_the_pool_lists_the_pool(tmp_path):
    (tmp_path / "pool.yaml").write_text(
        yaml.safe_dump({"models": [{"name": "small"}, {"name": "big"}]})
    )
    path = write(tmp_path, {**MINIMAL, "generator": "huge", "pool": "pool.yaml"})
    with pytest.raises(ConfigError, match=r"'huge' is not in the pool .*small, big"):
        TaskProfile.load(path)


def test_missing_and_unparsable_files_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="task profile not found"):
        TaskProfile.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        TaskProfile.load(bad)


def test_a_profile_round_trips_through_yaml(tmp_path):
    profile = TaskProfile.load(write(tmp_path, MINIMAL))
    profile.save(tmp_path / "again.yaml")
    again = TaskProfile.load(tmp_path / "again.yaml")
    assert again.model_dump() == profile.model_dump()
