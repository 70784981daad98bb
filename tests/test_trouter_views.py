"""TRouter's query views: boilerplate shared by training prompts is learned and cut away, so the
question itself is read (few-shot benchmark prompts embed alike otherwise)."""

from __future__ import annotations

import numpy as np
import pytest

from factories import tiny_static_encoder, tricky_task
from trouter.cli import run
from trouter.data.dataset import RoutingDataset
from trouter.encode import load_encoder
from trouter.routers.registry import load_router
from trouter.routers.trouter import TRouter
from trouter.routers.trouter.views import Boilerplate, common_prefix_length, embed_view

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FEW_SHOT = "Answer like the examples below.\n\n" + "Q: what is two plus two?\nA: 4\n\n" * 8
FORMAT = "\nReply with the answer only, no explanation, no working, no units. Answer:"


def _templated(questions: list[str]) -> list[str]:
    return [FEW_SHOT + q + FORMAT for q in questions]


def test_common_prefix_length():
    assert common_prefix_length("abcdef", "abcxyz") == 3
    assert common_prefix_length("abc", "abc") == 3
    assert common_prefix_length("", "abc") == 0


def test_boilerplate_is_the_prefix_and_suffix_many_training_queries_share():
    questions = [f"Q: how many legs do {i} spiders have?" for i in range(40)]
    plain = [f"translate 'good morning number {i}' into French" for i in range(40)]
    boilerplate = Boilerplate.learn(_templated(questions) + plain)
    assert boilerplate.prefixes == (FEW_SHOT,)
    assert boilerplate.suffixes == (FORMAT,)
    assert boilerplate.strip(_templated(["Q: is a whale a fish?"])[0]) == "Q: is a whale a fish?"
    assert boilerplate.strip(plain[0]) == plain[0]  # nothing shared: untouched
    assert boilerplate.strip(FEW_SHOT + FORMAT) == FEW_SHOT + FORMAT  # never all of the text


def test_a_line_two_queries_share_by_chance_is_not_boilerplate():
    shared = "This long first line happens to open two of the queries, and no others at all.\n"
    queries = [f"question {i}: " + "words " * 20 for i in range(300)]
    queries += [shared + "first ending", shared + "second ending"]
    assert not Boilerplate.learn(queries).prefixes


def _few_shot_task() -> RoutingDataset:
    """One few-shot task; the small model fails exactly the questions that say 'tricky'."""
    return tricky_task(wrap=lambda text: _templated([f"Q: {text}?"])[0], task="quiz")


def test_the_question_view_reads_past_the_few_shot_prefix_and_is_saved(tmp_path):
    data = _few_shot_task()
    train, test = data.subset(data.query_ids[:160]), data.subset(data.query_ids[160:])
    # The question residual alone (no residual on the whole prompt) reads the question.
    router = TRouter(encoder="hashing:256", residual=False, ensemble=1).fit(train)
    assert router.text_view == "question"  # the default
    assert router.boilerplate_["prefixes"] == [FEW_SHOT]
    assert router.training_["residual_check"]["question"]["kept"]
    x = router._embed(test.queries[:1] + ["a query without any boilerplate"])
    assert x.shape == (2, 512)
    assert np.linalg.norm(x[0, 256:]) > 0.99 and not np.any(x[1, 256:])  # no question cut out
    tricky = np.asarray(["tricky" in q for q in test.queries])
    small = router.predict(test.queries).quality[:, 0]
    assert small[tricky].mean() < 0.3 < 0.7 < small[~tricky].mean()
    full = TRouter(encoder="hashing:256", residual=False, ensemble=1, text_view="full").fit(train)
    flat = full.predict(test.queries).quality[:, 0]
    assert abs(flat[tricky].mean() - flat[~tricky].mean()) < 0.1
    router.save(tmp_path / "r")
    loaded = load_router(tmp_path / "r")
    np.testing.assert_array_equal(
        loaded.predict(test.queries).quality, router.predict(test.queries).quality
    )
    assert full.question_of(test.queries[0]) is None


def test_route_says_how_much_boilerplate_it_read_past(tmp_path, capsys):
    data = _few_shot_task()
    TRouter(encoder="hashing:256", residual=False, ensemble=1).fit(data).save(tmp_path / "r")
    query = _templated(["Q: is a tricky whale a fish?"])[0]
    assert run(["route", query, "--router", str(tmp_path / "r")]) == 0
    cut = len(FEW_SHOT) + len(FORMAT)
    assert (
        f"read the question apart from {cut} characters of boilerplate" in capsys.readouterr().out
    )
    assert run(["route", "a plain question", "--router", str(tmp_path / "r")]) == 0
    assert "read the question apart" not in capsys.readouterr().out


class CountingEncoder:
    """The hashing encoder, counting the texts it is asked to encode."""

    def __init__(self) -> None:
        self.inner = load_encoder("hashing:256")
        self.id, self.spec, self.dim = self.inner.id, self.inner.spec, self.inner.dim
        self.texts = 0

    def encode(self, texts):
        self.texts += len(texts)
        return self.inner.encode(texts)


@pytest.mark.parametrize(("residual", "encodings"), [(False, 2), (True, 1)])
def test_a_question_is_encoded_only_when_its_residual_was_kept(residual, encodings):
    data = _few_shot_task()
    train, test = data.subset(data.query_ids[:160]), data.subset(data.query_ids[160:])
    encoder = CountingEncoder()
    router = TRouter(encoder=encoder, residual=residual, ensemble=1).fit(train)
    # With the residual on the whole prompt (which the hashing encoder reads in full) the
    # question adds nothing on validation: its correction is dropped, and so is its encoding.
    assert router.training_["residual_check"]["question"]["kept"] is (not residual)
    encoder.texts = 0
    router.predict(test.queries)
    assert encoder.texts == encodings * len(test.queries)


class WithoutTokenSums:
    """An encoder as it is, minus its token sums: `embed_view` then encodes every prompt whole."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.id, self.spec, self.dim = inner.id, inner.spec, inner.dim

    def encode(self, texts):
        return self.inner.encode(texts)


def test_a_static_encoder_reads_the_boilerplate_once_and_embeds_as_if_it_read_everything(
    tmp_path,
):
    static = tiny_static_encoder(tmp_path / "static")
    questions = [f"what is {k} plus {k + 1}?" for k in range(12)]
    boilerplate = Boilerplate.learn(_templated(questions))
    queries = [
        *_templated(["how many legs has a spider?", "name a prime above 90"]),
        "a query without boilerplate",
        FEW_SHOT * 40 + "a question after more text than the encoder reads" + FORMAT,
        "no boilerplate, but too long for the encoder " * 200,
    ]
    by_parts = embed_view(static, queries, "question", 0, boilerplate)
    whole = embed_view(WithoutTokenSums(static), queries, "question", 0, boilerplate)
    np.testing.assert_allclose(by_parts, whole, atol=1e-5)
    assert by_parts[:2, static.dim :].any() and not by_parts[2:, static.dim :][[0, 2]].any()


def test_a_static_encoder_router_reads_prompts_by_parts_with_the_estimates_of_whole_prompts(
    tmp_path,
):
    static = tiny_static_encoder(tmp_path / "static")
    data = _few_shot_task()
    train, test = data.subset(data.query_ids[:160]), data.subset(data.query_ids[160:])
    router = TRouter(encoder=static, ensemble=1).fit(train)
    # the boilerplate is read once, by parts, whether or not the question residual was kept
    assert router._boilerplate().prefixes == (FEW_SHOT,)
    by_parts = router.predict(test.queries).quality
    router._encoder_obj = WithoutTokenSums(static)
    np.testing.assert_allclose(by_parts, router.predict(test.queries).quality, atol=1e-6)
