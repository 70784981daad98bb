"""Small, real objects for tests: a synthetic routing dataset whose best model depends on the task."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from trouter.data.dataset import RoutingDataset
from trouter.encode import StaticEncoder, _minilm_path
from trouter.pool import Pool
from trouter.store import Store

TOY_MODELS = ("small", "medium", "large")
TOY_PRICES = {"small": (0.1, 0.2), "medium": (1.0, 2.0), "large": (10.0, 30.0)}
TOY_TASKS = {
    # task: (vocabulary, P(correct) for small / medium / large)
    "math/arithmetic": (["add", "sum", "plus", "numbers", "total", "digits"], (0.9, 0.92, 0.95)),
    "math/proof": (
        ["prove", "theorem", "lemma", "induction", "rigorous", "axiom"],
        (0.1, 0.4, 0.9),
    ),
    "code/python": (["python", "function", "list", "loop", "return", "def"], (0.3, 0.85, 0.9)),
    "chat/smalltalk": (
        ["hello", "weather", "weekend", "favourite", "movie", "coffee"],
        (0.95, 0.95, 0.96),
    ),
}


def toy_dataset(n_per_task: int = 40, seed: int = 0, with_tokens: bool = True) -> RoutingDataset:
    """Queries from four tasks; the cheap model is as good as the dear one on two of them."""
    rng = np.random.default_rng(seed)
    pool = Pool.from_prices(TOY_PRICES)
    ids, texts, tasks, scores, t_in, t_out = [], [], [], [], [], []
    for task, (vocab, p_correct) in TOY_TASKS.items():
        for k in range(n_per_task):
            words = [*rng.choice(vocab, size=6).tolist(), f"item{k}"]
            ids.append(f"{task}-{k}")
            texts.append(" ".join(words) + "?")
            tasks.append(task)
            scores.append((rng.random(3) < np.asarray(p_correct)).astype(float))
            t_in.append(20 + len(words))
            t_out.append(
                [50 + rng.integers(0, 20), 80 + rng.integers(0, 40), 120 + rng.integers(0, 60)]
            )
    tokens_in = np.asarray(t_in, dtype=float)
    tokens_out = np.asarray(t_out, dtype=float)
    costs = pool.cost(tokens_in, tokens_out)
    return RoutingDataset.from_matrices(
        query_ids=ids,
        queries=texts,
        models=TOY_MODELS,
        scores=np.asarray(scores),
        costs=costs,
        tasks=tasks,
        tokens_in=tokens_in if with_tokens else None,
        tokens_out=tokens_out if with_tokens else None,
        name="toy",
        pool=pool,
    )


def tricky_task(
    n: int = 200, wrap: Callable[[str], str] = lambda text: text, task: str = "qa"
) -> RoutingDataset:
    """One task where the small model fails exactly the queries that say 'tricky' (a per-query
    signal no task-level estimate carries); `wrap` turns each query's core text into the query."""
    rng = np.random.default_rng(0)
    texts, scores = [], []
    for i in range(n):
        tricky = i % 2 == 0
        words = rng.choice(["apple", "river", "stone", "cloud", "paper"], size=5).tolist()
        texts.append(wrap(" ".join([*words, "tricky" if tricky else "plain", f"n{i}"])))
        scores.append([0.0 if tricky else 1.0, 1.0, 1.0])
    return RoutingDataset.from_matrices(
        query_ids=[f"q{i}" for i in range(n)],
        queries=texts,
        models=TOY_MODELS,
        scores=np.asarray(scores),
        costs=np.tile([0.001, 0.01, 0.1], (n, 1)),
        tasks=[task] * n,
    )


def tiny_static_encoder(directory: Path) -> StaticEncoder:
    """A `static` encoder with MiniLM's real tokenizer and random 16-d token vectors (float16, as
    distilled ones are), saved to `directory`: the real code path without the 25 s distillation."""
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(_minilm_path()) / "tokenizer.json"))
    vectors = np.random.default_rng(0).normal(size=(tokenizer.get_vocab_size(), 16))
    StaticModel(vectors.astype(np.float16), tokenizer, normalize=True).save_pretrained(
        str(directory)
    )
    return StaticEncoder(pca_dims=16, directory=directory)


@contextmanager
def opened_meanwhile(url: str, statement: str) -> Iterator[list[Store]]:
    """Two processes opening one store at once, made repeatable: just before this process runs
    its first SQL statement starting with `statement` (e.g. "CREATE TABLE"), another `Store(url)`
    is opened (and yielded in the list), as another process would open it meanwhile."""
    from sqlalchemy import Engine, event

    others: list[Store] = []
    started = False

    def _the_other_first(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        nonlocal started
        if sql.lstrip().startswith(statement) and not started:
            started = True  # before it opens: the other's own statements must not recurse
            others.append(Store(url))

    event.listen(Engine, "before_cursor_execute", _the_other_first)
    try:
        yield others
    finally:
        event.remove(Engine, "before_cursor_execute", _the_other_first)
