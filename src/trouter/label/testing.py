"""Small stand-ins for a `trouter label` run, for tests and demos: items a scripted pool can
answer, a `FakeOpenAI` handler that answers them and judges with a fixed verdict, and the files
and command line of the run.

- `arithmetic_items` ("What is i + i?", numeric) and `summary_items` (free text, judged).
- `LabelAnswerer`: pool models that answer the sums right (or off by a set amount), write a
  plain summary, judges with a fixed verdict each; a model can be made to fail every call after
  its first requests, and one (model, query) to get a scripted reply.
- `write_pool`: a pool (or judge pool) YAML pointing every model at the fake server.
- `label_args`: the `trouter label` command line over the files of one directory.

    with FakeOpenAI(LabelAnswerer({"judge": "Score: 8/10"}), models=("cheap", "judge")) as server:
        ItemsFile(tmp / "items.jsonl").append(arithmetic_items(5) + summary_items(2))
        write_pool(tmp / "pool.yaml", server.url, {"cheap": (1.0, 2.0)})
        write_pool(tmp / "judges.yaml", server.url, ["judge"])
        run(label_args(tmp, judge="judge"))

Everything is deterministic: the same request always gets the same answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trouter.synth.items import AnswerFormat, SynthItem
from trouter.testing.script import Action, FakeRequest, Reply, Status


def synth_item(query: str, reference: str, answer_format: AnswerFormat, path: str) -> SynthItem:
    """An item as the synthesis step writes it (generator "gen", prompt "test/1")."""
    return SynthItem(
        query=query,
        reference=reference,
        answer_format=answer_format,
        path=path,
        generator="gen",
        prompt_version="test/1",
    )


def arithmetic_items(n: int) -> list[SynthItem]:
    """`n` numeric items "What is i + i?" (i = 0 .. n-1) under math/arithmetic."""
    return [
        synth_item(f"What is {i} + {i}?", str(2 * i), "numeric", "math/arithmetic")
        for i in range(n)
    ]


def summary_item(query: str, reference: str) -> SynthItem:
    """A free-text item under writing/summary: only a judge grades it."""
    return synth_item(query, reference, "free_text", "writing/summary")


def summary_items(n: int) -> list[SynthItem]:
    """`n` free-text items "Summarise: cat number i sat on the mat." under writing/summary."""
    return [
        summary_item(f"Summarise: cat number {i} sat on the mat.", f"Cat {i} sat on a mat.")
        for i in range(n)
    ]


@dataclass
class LabelAnswerer:
    """A `FakeOpenAI` handler for a labelling run (see the module docstring).

    `judges` maps each judge model to the reply it gives every answer (e.g. "Score: 8/10").
    A pool model answers "What is a + a?" with "The answer is 2a." plus `off_by[model]`, and any
    other query with "A cat sat on a mat, says <model>.", after `delay` seconds. A model in
    `down` answers that many requests and then fails every call with a 500 (Retry-After 0, so
    the client's retries are quick); `replies[(model, query)]` overrides one answer. Thread-safe.
    """

    judges: Mapping[str, str]
    off_by: Mapping[str, int] = field(default_factory=dict)
    delay: float = 0.0
    down: dict[str, int] = field(default_factory=dict)  # model -> requests before failing
    replies: dict[tuple[str, str], Action] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)  # model -> requests received
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, req: FakeRequest) -> Action:
        with self._lock:
            self.seen[req.model] = n = self.seen.get(req.model, 0) + 1
        if req.model in self.down and n > self.down[req.model]:
            return Status(500, "upstream crashed", retry_after=0.0)
        if (req.model, req.last_user) in self.replies:
            return self.replies[req.model, req.last_user]
        if req.model in self.judges:
            return Reply(content=self.judges[req.model])
        words = req.last_user.split()
        if words[0] == "What":
            total = int(words[2]) * 2 + self.off_by.get(req.model, 0)
            return Reply(content=f"The answer is {total}.", delay=self.delay)
        return Reply(content=f"A cat sat on a mat, says {req.model}.", delay=self.delay)


def write_pool(
    path: Path,
    url: str,
    models: Mapping[str, tuple[float, float]] | Iterable[str],
    **extra: Any,
) -> Path:
    """A pool YAML at `path` with every model served at `url`: `models` names them, or maps
    each to its (input, output) price per 1M tokens; `extra` fields (e.g. max_concurrency) go
    on every model."""
    import yaml

    prices = models if isinstance(models, Mapping) else dict.fromkeys(models)
    specs = []
    for name, price in prices.items():
        spec: dict[str, Any] = {"name": name, "base_url": url, **extra}
        if price is not None:
            spec["input_price"], spec["output_price"] = price
        specs.append(spec)
    path.write_text(yaml.safe_dump({"models": specs}))
    return path


def label_args(
    tmp: Path,
    *extra: str,
    judge: str | None = None,
    judge_pool: str = "judges.yaml",
    skip_check: bool = True,
) -> list[str]:
    """`trouter label tmp/items.jsonl --pool tmp/pool.yaml [--judge J --judge-pool
    tmp/<judge_pool>] --out tmp/out/labels.parquet [--skip-check] *extra`; the items file is
    always the second word, for a test to swap."""
    args = ["label", str(tmp / "items.jsonl"), "--pool", str(tmp / "pool.yaml")]
    if judge is not None:
        args += ["--judge", judge, "--judge-pool", str(tmp / judge_pool)]
    args += ["--out", str(tmp / "out" / "labels.parquet")]
    if skip_check:
        args.append("--skip-check")
    return [*args, *extra]
