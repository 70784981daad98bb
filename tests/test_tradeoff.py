import numpy as np
import pytest

from trouter.errors import ConfigError
from trouter.tradeoff import Calibration, Tradeoff, choose


def test_parse_accepts_every_documented_form():
    assert Tradeoff.parse("lambda=200").lam == 200
    assert Tradeoff.parse("150").lam == 150
    assert Tradeoff.parse("cost").preset == "cost"
    assert Tradeoff.parse("budget=$2.5").budget_per_1k == 2.5


@pytest.mark.parametrize("text", ["cheapest", "lambda=abc", "lambda=-1", "budget=0", "budget=-3"])
def test_bad_tradeoffs_are_clear_errors(text):
    with pytest.raises(ConfigError):
        Tradeoff.parse(text)


def test_choose_breaks_ties_towards_the_cheaper_model():
    quality = np.array([[0.5, 0.5]])
    cost = np.array([[2.0, 1.0]])
    assert choose(quality, cost, 0.0).tolist() == [1]


def test_presets_order_lambdas_and_budget_is_respected():
    rng = np.random.default_rng(0)
    quality = rng.random((200, 3)) * np.array([0.6, 0.8, 0.95])
    cost = np.tile([0.001, 0.01, 0.1], (200, 1))
    cal = Calibration(quality, cost)
    lams = [cal.lambda_for_preset(p) for p in ("quality", "balanced", "cost")]
    assert lams == sorted(lams)
    lam = cal.lambda_for_budget(20.0)  # $20 per 1k = $0.02 per query
    assert cal.mean_cost(lam) <= 0.02 + 1e-12
    assert cal.mean_cost(lam * 0.9) > 0.02  # and no smaller lambda would do
    with pytest.raises(ConfigError, match="below the cheapest routing"):
        cal.lambda_for_budget(0.5)


def test_costs_equal_but_for_noise_count_as_equal():
    # A router that learns costs returns equal ones with a little noise; dividing by that
    # noise made `quality` pick the model 2e-6 $ cheaper instead of the best one.
    quality = np.array([[0.50, 0.58, 0.55]])
    noisy = Calibration(quality=quality, cost=np.array([[0.010001, 0.010002, 0.009999]]))
    assert noisy.cost_range == 1.0
    lam = noisy.lambda_for_preset("quality")
    assert int(choose(quality, noisy.cost, lam)[0]) == 1
    real = Calibration(quality=quality, cost=np.array([[0.001, 0.01, 0.1]]))
    assert real.cost_range == pytest.approx(0.099)


@pytest.mark.parametrize("value", [None, "x", True, [1.0]])
def test_a_trade_off_that_is_not_a_number_is_a_one_line_error(value):
    with pytest.raises(ConfigError, match="must be a number"):
        Tradeoff.from_lambda(value)
    with pytest.raises(ConfigError, match="must be a number"):
        Tradeoff.from_budget(value)


def test_parse_wants_text_and_numpy_numbers_are_lambdas():
    with pytest.raises(ConfigError, match="a trade-off to parse is text"):
        Tradeoff.parse(5)  # type: ignore[arg-type]
    assert Tradeoff.from_lambda(np.int64(3)).lam == 3.0
