"""Profile errors that name the real mistake: an inline generator with an unknown key, and a
fixed node list with a repeated node (which would collapse into one)."""

from __future__ import annotations

import pytest

from trouter.errors import ConfigError
from trouter.profile import TaskProfile

BASE = {
    "name": "p",
    "description": "A support assistant for a small SaaS product.",
    "levels": [{"name": "difficulty", "nodes": ["easy", "hard"]}],
    "generator": {"name": "gen", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
}


def test_an_inline_generator_with_an_unknown_key_names_that_key():
    raw = {**BASE, "generator": {**BASE["generator"], "inputprice": 1.0}}
    with pytest.raises(ConfigError) as caught:
        TaskProfile.from_dict(raw)
    message = str(caught.value)
    assert "generator.inputprice: Extra inputs are not permitted" in message, message
    assert "valid string" not in message and "function-after" not in message


def test_a_generator_of_the_wrong_type_still_says_what_it_should_be():
    with pytest.raises(ConfigError, match="generator"):
        TaskProfile.from_dict({**BASE, "generator": 3})


def test_a_fixed_node_list_with_a_repeated_node_is_refused():
    raw = {**BASE, "levels": [{"name": "difficulty", "nodes": ["easy", "Easy", "hard"]}]}
    with pytest.raises(ConfigError, match="level 'difficulty': repeated nodes easy"):
        TaskProfile.from_dict(raw)
