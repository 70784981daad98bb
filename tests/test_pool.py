import numpy as np
import pytest

from trouter.errors import ConfigError
from trouter.pool import ModelSpec, Pool


def test_cost_is_tokens_times_price_per_million():
    spec = ModelSpec(name="m", input_price=2.0, output_price=8.0)
    assert spec.call_cost(1_000_000, 0) == pytest.approx(2.0)
    assert spec.call_cost(500, 250) == pytest.approx((500 * 2 + 250 * 8) / 1e6)


def test_pool_cost_matrix_uses_each_models_prices():
    pool = Pool.from_prices({"a": (1.0, 2.0), "b": (10.0, 20.0)})
    costs = pool.cost(np.array([100, 200]), np.array([[10, 10], [0, 5]]))
    assert costs.shape == (2, 2)
    assert costs[1, 1] == pytest.approx((200 * 10 + 5 * 20) / 1e6)


def test_model_id_defaults_to_name():
    assert ModelSpec(name="gpt-x").model == "gpt-x"


def test_pool_rejects_duplicates_and_unknown_fields(tmp_path):
    with pytest.raises(ConfigError, match="repeated: a"):
        Pool.from_dict({"models": [{"name": "a"}, {"name": "a"}]})
    path = tmp_path / "pool.yaml"
    path.write_text("models:\n  - name: a\n    input_prise: 1\n")
    with pytest.raises(ConfigError, match="input_prise"):
        Pool.load(path)


def test_pool_round_trips_through_yaml(tmp_path):
    pool = Pool.of(
        [ModelSpec(name="a", base_url="http://127.0.0.1:1/v1", api_key_env="K", input_price=1.5)]
    )
    pool.save(tmp_path / "p.yaml")
    assert Pool.load(tmp_path / "p.yaml") == pool


def test_unknown_model_names_the_pool():
    pool = Pool.from_prices({"a": (1, 1)})
    with pytest.raises(ConfigError, match="the pool has: a"):
        pool["zzz"]


@pytest.mark.parametrize("value", ["-1", ".nan", "-.inf"])
def test_a_max_queue_that_is_no_number_of_seconds_names_the_model(tmp_path, value):
    path = tmp_path / "pool.yaml"
    path.write_text(f"models:\n  - name: a\n  - name: big\n    max_queue_s: {value}\n")
    with pytest.raises(ConfigError) as error:
        Pool.load(path)
    message = str(error.value)
    assert "\n" not in message
    assert "model 'big': max_queue_s must be 0 or more seconds" in message


def test_max_queue_is_optional_and_may_be_zero_or_unbounded():
    assert ModelSpec(name="m").max_queue_s is None
    assert ModelSpec(name="m", max_queue_s=0).max_queue_s == 0.0
    assert ModelSpec(name="m", max_queue_s=float("inf")).max_queue_s == float("inf")
