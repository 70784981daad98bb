"""Scripted stand-ins for a whole cold start, for tests, demos and benchmarks: `FakeOpenAI`
handlers for a generator whose items a scripted model can answer, pool models of chosen skill,
and a judge.

- `SkillGenerator`: a `FakeGenerator` whose QA items are small sums (numeric, multiple choice)
  and "what is the key point" free-text questions, worded by the leaf's difficulty ("Quick
  question", "Two-step question", "Tricky multi-step problem").
- `PoolAnswerer`: answers for any number of pool models; each model answers the difficulties in
  its `skills` correctly and the others wrongly, in the forms the real scorers grade. It reports
  its own token usage (not whitespace counts) and remembers it, so a test can check that every
  observation's $ cost is the usage the server returned times the price.
- `KeyPointJudge`: grades 10/10 when the response names the reference's key point, else 0/10.
- `job_servers` starts a fake server for each of them; `write_job_files` writes the job's files.

Everything is deterministic: the same request always gets the same answer.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trouter.synth.testing import FakeGenerator
from trouter.testing.fake_openai import FakeOpenAI, FakeRequest, Handler, Reply

PHRASES = {
    "easy": "Quick question",
    "medium": "Two-step question",
    "hard": "Tricky multi-step problem",
}
_DIFFICULTY = {phrase: name for name, phrase in PHRASES.items()}
# Harder questions are longer and worded differently, as real ones are: a few words of the
# difficulty's own vocabulary go into each query (2 for easy, 4 for medium, 6 for hard).
STYLE = {
    "easy": ("simple", "basic", "menu", "page", "button", "default", "where", "find"),
    "medium": ("prorate", "combine", "compare", "estimate", "annual", "seats", "upgrade", "both"),
    "hard": ("debug", "migration", "rollback", "edge", "concurrency", "regression", "failover",
             "intermittent", "race", "after"),
}  # fmt: skip
_SUM = re.compile(r"(\d+) \+ (\d+)\?")
_OPTION = re.compile(r"^([A-Z])\) (\d+)$", re.MULTILINE)
_KEY = re.compile(r"key point about (\w+)")


_VOCABULARY = (
    "invoice refund seat plan upgrade coupon receipt password login sso token session email "
    "workspace owner admin guest role audit export backup retention webhook endpoint payload "
    "signature pagination filter project board sprint milestone label comment attachment "
    "calendar timesheet approval dashboard metric notification sync browser cookie timezone "
    "template automation trigger schedule reminder archive search outage incident region quota "
    "upload preview branch deploy pipeline secret rotation scope proxy firewall allowlist"
)
_WORDS = tuple(_VOCABULARY.split())


def _pick(seed: str, k: int) -> list[str]:
    digest = hashlib.sha256(seed.encode()).digest()
    return [
        _WORDS[int.from_bytes(digest[2 * i : 2 * i + 2], "big") % len(_WORDS)] for i in range(k)
    ]


def _number(seed: str, low: int, high: int) -> int:
    value = int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16)
    return low + value % (high - low + 1)


def difficulty_of(query: str) -> str:
    """The difficulty a `SkillGenerator` query was written for ("" if none)."""
    for phrase, name in _DIFFICULTY.items():
        if query.startswith(phrase):
            return name
    return ""


@dataclass
class SkillGenerator(FakeGenerator):
    """See the module docstring; the taxonomy prompts are answered as by `FakeGenerator`."""

    def sample(self, path: str, n: int, batch: int = 1000) -> list[dict[str, Any]]:
        """`n` items for a leaf as the generator would write them in batch `batch` (a batch
        far beyond the synthesis run's gives queries the run never saw)."""
        meta = {"path": path, "n": n, "batch": batch, "language": "en"}
        meta["formats"] = ["numeric", "multiple_choice", "free_text"]
        items: list[dict[str, Any]] = self._qa_generate(meta, "")["items"]
        return items

    def _qa_generate(self, meta: dict[str, Any], text: str) -> dict[str, Any]:
        path = str(meta["path"])
        difficulty = path.rsplit("/", 1)[-1].lower()
        phrase = PHRASES.get(difficulty, "Question")
        style = STYLE.get(difficulty, ())
        n_style = {"easy": 2, "medium": 4}.get(difficulty, 6)
        formats = meta["formats"]
        items = []
        for i in range(meta["n"]):
            serial = meta["batch"] * meta["n"] + i
            seed = f"{path}|{meta['language']}|{serial}"
            words = _pick(seed, 6)
            topic = " ".join(words[:4])
            if style:
                picks = [style[_number(f"{seed}|{k}", 0, len(style) - 1)] for k in range(n_style)]
                topic += f" ({' '.join(picks)})"
            a, b = _number(seed + "a", 10, 99), _number(seed + "b", 10, 99)
            fmt = formats[serial % len(formats)]
            if fmt == "numeric":
                item = {"query": f"{phrase} on {topic}: what is {a} + {b}?", "reference": a + b}
            elif fmt == "multiple_choice":
                options = [a + b - 1, a + b, a + b + 2]
                shift = _number(seed + "s", 0, 2)
                options = options[shift:] + options[:shift]
                item = {
                    "query": f"{phrase} on {topic}: which is {a} + {b}?",
                    "choices": [str(o) for o in options],
                    "reference": "ABC"[options.index(a + b)],
                }
            else:
                key = words[4]
                item = {
                    "query": f"{phrase} on {topic}: what is the key point about {key}?",
                    "reference": f"The key point is {key}.",
                }
            items.append({**item, "answer_format": fmt})
        return {"items": items}


@dataclass
class PoolAnswerer:
    """Answers as every pool model in `skills` (model id -> difficulties it gets right)."""

    skills: dict[str, tuple[str, ...]]
    delay: float = 0.0
    # (model id, query) -> (prompt tokens, completion tokens) this server reported.
    usage: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer(self, model: str, query: str) -> str:
        right = difficulty_of(query) in self.skills.get(model, ())
        found = _SUM.search(query)
        if found:
            total = int(found.group(1)) + int(found.group(2))
            options = {int(v): letter for letter, v in _OPTION.findall(query)}
            if options:
                if right:
                    return f"Adding them gives {total}.\nAnswer: {options[total]}"
                wrong = next(letter for v, letter in sorted(options.items()) if v != total)
                return f"I think it is this one.\nAnswer: {wrong}"
            return f"The answer is {total if right else total + 7}."
        key = _KEY.search(query)
        if key and right:
            return f"In short, the key point is {key.group(1)}, as the documentation explains."
        return "It depends on your settings; please contact support for details."

    def __call__(self, req: FakeRequest) -> Reply:
        query = req.last_user
        content = self.answer(req.model, query)
        # Our own counts, so that a cost computed from whitespace words would not match.
        prompt_tokens = 3 * len(query.split()) + 11
        completion_tokens = 2 * len(content.split()) + 5
        with self._lock:
            self.usage[(req.model, query)] = (prompt_tokens, completion_tokens)
        return Reply(
            content=content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            delay=self.delay,
        )


@dataclass
class KeyPointJudge:
    """A judge for `SkillGenerator` free-text items (see the module docstring)."""

    delay: float = 0.0

    def __call__(self, req: FakeRequest) -> Reply:
        text = req.last_user
        reference = re.search(r"The key point is (\w+)\.", text)
        response = text.split("<<<", 1)[-1].rsplit(">>>", 1)[0]
        if reference and f"key point is {reference.group(1)}" in response:
            return Reply(content="Names the key point.\nScore: 10/10", delay=self.delay)
        return Reply(content="Misses the key point.\nScore: 0/10", delay=self.delay)


@contextmanager
def job_servers(
    generator: Handler, judge: Handler, pool: Handler, names: Iterable[str]
) -> Iterator[dict[str, FakeOpenAI]]:
    """A started `FakeOpenAI` for "generator", for "judge" and for each pool model of `names`
    (every one of them answered by `pool`), by name; all are stopped on leaving."""
    servers = {
        "generator": FakeOpenAI(generator, models=("generator",)),
        "judge": FakeOpenAI(judge, models=("judge",)),
        **{name: FakeOpenAI(pool, models=(name,)) for name in names},
    }
    with ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(server)
        yield servers


def write_job_files(
    cfg: Path,
    urls: Mapping[str, str],
    pool: Mapping[str, tuple[float, float]],
    profile: dict[str, Any],
) -> None:
    """The files a cold start against fake servers reads, in `cfg`: models.yaml (the profile's
    own pool: "generator" and "judge"), pool.yaml (the models to route, at `pool`'s input and
    output prices per 1M tokens) and profile.yaml (`profile`); `urls` maps each model to its
    server's base URL."""
    import yaml

    def spec(name: str, prices: tuple[float, float], **extra: Any) -> dict[str, Any]:
        return {"name": name, "base_url": urls[name], "input_price": prices[0],
                "output_price": prices[1], **extra, "timeout_s": 5}  # fmt: skip

    helpers = [spec("generator", (1.0, 2.0)), spec("judge", (0.5, 1.0))]
    routed = [spec(name, prices, max_concurrency=4) for name, prices in pool.items()]
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "models.yaml").write_text(yaml.safe_dump({"models": helpers}))
    (cfg / "pool.yaml").write_text(yaml.safe_dump({"models": routed}))
    (cfg / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
