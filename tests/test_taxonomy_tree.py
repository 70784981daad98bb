import pytest

from trouter.errors import ConfigError
from trouter.taxonomy import Taxonomy, TaxonomyNode


def sample() -> Taxonomy:
    return Taxonomy(
        levels=["domain", "subcategory", "difficulty"],
        roots=[
            TaxonomyNode(
                name="billing",
                definition="Questions about invoices and payments.",
                children=[
                    TaxonomyNode(
                        name="refunds",
                        definition="Getting money back.",
                        children=[
                            TaxonomyNode(name="easy", example="How do I get a refund?"),
                            TaxonomyNode(
                                name="hard",
                                example="Refund a partially used annual plan bought in EUR?",
                            ),
                        ],
                    ),
                ],
            ),
            TaxonomyNode(
                name="tech",
                children=[TaxonomyNode(name="login", children=[TaxonomyNode(name="easy")])],
            ),
        ],
    )


def test_leaves_paths_and_parents():
    t = sample()
    assert t.leaf_paths() == ["billing/refunds/easy", "billing/refunds/hard", "tech/login/easy"]
    assert t.parent("billing/refunds/easy") == "billing/refunds"
    assert t.ancestors("billing/refunds/easy") == ["billing", "billing/refunds"]
    assert t.leaves_under("billing") == ["billing/refunds/easy", "billing/refunds/hard"]
    assert "tech/login" in t and "tech/nope" not in t
    assert t.nodes_at_level(1) == ["billing/refunds", "tech/login"]


def test_leaf_text_carries_path_definitions_and_example():
    text = sample().leaf_text("billing/refunds/hard")
    assert text.startswith(
        "billing: Questions about invoices and payments. > refunds: Getting money back. > hard"
    )
    assert text.endswith("Example: Refund a partially used annual plan bought in EUR?")


def test_from_task_names_builds_the_tree():
    t = Taxonomy.from_task_names(["mmlu/stem/algebra", "mmlu/stem/physics", "gsm8k"])
    assert t.leaf_paths() == ["mmlu/stem/algebra", "mmlu/stem/physics", "gsm8k"]
    assert len(t.levels) == 3


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_round_trip(tmp_path, suffix):
    t = sample()
    assert Taxonomy.load(t.save(tmp_path / f"tax{suffix}")) == t


def test_bad_trees_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="repeated node names a"):
        Taxonomy.from_dict({"roots": [{"name": "a"}, {"name": "A"}]})
    with pytest.raises(ConfigError, match="2 levels deep but only 1"):
        Taxonomy.from_dict({"levels": ["x"], "roots": [{"name": "a", "children": [{"name": "b"}]}]})
    path = tmp_path / "t.yaml"
    path.write_text("roots: [unclosed")
    with pytest.raises(ConfigError, match="not valid JSON or YAML"):
        Taxonomy.load(path)


def test_slashes_in_names_cannot_break_paths():
    assert TaxonomyNode(name="input/output").name == "input-output"
