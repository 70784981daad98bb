"""What TRouter reads of a query: its embedding (whole, plus a second view) and its length.

An encoder reads at most its window (256 word pieces for MiniLM). Benchmark prompts and templated
traffic often open with the same few-shot examples or instructions and close with the same answer
format, so every query of a task embeds alike and the question itself is never read. Two views
add a second embedding, concatenated to the first:

- `question`: the query with its boilerplate removed: the longest prefix and suffix, cut at line
  ends, that it shares with other training queries (`Boilerplate`, learned at fit time and saved
  with the router); zeros for a query without boilerplate (no extra encoding).
- `head+tail`: the last `tail_chars` characters of a prompt longer than that.

Leaf texts are short and carry no boilerplate: both halves agree.

With an encoder that sums token vectors (`static`), the `question` view tokenises each prompt's
question only and adds the boilerplate's sums, kept between calls: the same vectors (to float32
rounding) at a fraction of the cost on few-shot prompts (benchmarks/RESULTS-speed.md).
"""

from __future__ import annotations

import math
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from trouter.encode import Embeddings, Encoder, SumsTokens, sums_tokens, unit_rows

TEXT_VIEWS = ("full", "question", "head+tail")
FloatMatrix = npt.NDArray[np.float64]


def common_prefix_length(a: str, b: str) -> int:
    """Length of the longest common prefix of two strings (binary search on C-level compares)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _line_cut(text: str, n: int) -> int:
    """The longest prefix of `text[:n]` that ends a line (0 if none)."""
    return text.rfind("\n", 0, n) + 1


@dataclass(frozen=True)
class Boilerplate:
    """Prefixes and suffixes shared by several training queries, and how to strip them.

    Learned from the training queries sorted as strings (and as reversed strings, for
    suffixes): each neighbour pair's common prefix, cut back to a line end, is a candidate; one
    at least `min_chars` long and shared by at least `min_share` of the queries (and 2 pairs)
    is boilerplate, not a coincidence (two questions with the same last option). A query loses
    the longest known prefix and suffix it carries (both kept longest first), never all of its
    text.
    """

    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()

    @classmethod
    def learn(
        cls,
        queries: Sequence[str],
        min_chars: int = 64,
        min_share: float = 0.005,
        limit: int = 256,
    ) -> Boilerplate:
        distinct = sorted(set(queries))
        min_pairs = max(2, math.ceil(min_share * len(distinct)))
        flipped = sorted(q[::-1] for q in distinct)
        ends = _shared_starts(flipped, min_chars, min_pairs, limit)
        return cls(
            _shared_starts(distinct, min_chars, min_pairs, limit), tuple(s[::-1] for s in ends)
        )

    def strip(self, query: str) -> str:
        """The query without its boilerplate (the query itself if nothing else would be left)."""
        return self.split(query)[1]

    def split(self, query: str) -> tuple[str, str, str]:
        """(prefix, question, suffix) that make up `query`; ("", query, "") when it has no
        boilerplate or nothing else would be left. The cuts fall at line ends."""
        head = next((p for p in self.prefixes if query.startswith(p)), "")
        tail = next((s for s in self.suffixes if query.endswith(s)), "")
        core = query[len(head) : len(query) - len(tail)]
        return (head, core, tail) if core.strip() else ("", query, "")

    def __bool__(self) -> bool:
        return bool(self.prefixes or self.suffixes)

    def to_dict(self) -> dict[str, list[str]]:
        return {"prefixes": list(self.prefixes), "suffixes": list(self.suffixes)}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> Boilerplate:
        return cls(tuple(data.get("prefixes", ())), tuple(data.get("suffixes", ())))


def _shared_starts(
    ordered: list[str], min_chars: int, min_pairs: int, limit: int
) -> tuple[str, ...]:
    counts: Counter[str] = Counter()
    for a, b in pairwise(ordered):
        cut = _line_cut(a, common_prefix_length(a, b))
        if cut >= min_chars:
            counts[a[:cut]] += 1
    kept = [s for s, c in counts.most_common(limit) if c >= min_pairs]
    return tuple(sorted(kept, key=len, reverse=True))


def tail_text(query: str, chars: int) -> str:
    """The last `chars` characters of a query, starting at a word boundary."""
    if len(query) <= chars:
        return query
    tail = query[-chars:]
    cut = tail.find(" ")
    return tail[cut + 1 :] if 0 <= cut < chars // 4 else tail


def embed_view(
    encoder: Encoder,
    queries: list[str],
    view: str,
    tail_chars: int,
    boilerplate: Boilerplate | None = None,
) -> Embeddings:
    """Query vectors [n, d] (`full`) or [n, 2d] (the other views; see the module docstring)."""
    if view == "full":
        return encoder.encode(queries)
    if view == "question" and boilerplate and sums_tokens(encoder):
        return _question_view_by_parts(encoder, queries, boilerplate)
    head = encoder.encode(queries)
    if view == "question":
        seconds = [boilerplate.strip(q) for q in queries] if boilerplate else queries
    else:
        seconds = [tail_text(q, tail_chars) for q in queries]
    changed = [i for i, (q, s) in enumerate(zip(queries, seconds, strict=True)) if s != q]
    # `question`: zeros where there was no boilerplate (the question residual applies only
    # where a question was cut out); `head+tail`: the head again.
    second = np.zeros_like(head) if view == "question" else head.copy()
    if changed:
        second[changed] = encoder.encode([seconds[i] for i in changed])
    if view == "question":
        return np.concatenate([head, second], axis=1).astype(np.float32)
    # Each half is unit-length, so the concatenation divided by sqrt(2) is too.
    return (np.concatenate([head, second], axis=1) / np.sqrt(2.0)).astype(np.float32)


def _question_view_by_parts(
    encoder: SumsTokens, queries: list[str], boilerplate: Boilerplate
) -> Embeddings:
    """The `question` view with an encoder that sums token vectors: each query is tokenised once,
    its question only. The whole prompt's vector is the sum of its question's and its
    boilerplate's (cut at line ends, so no token spans a cut; the boilerplate's sums are kept
    between calls). A prompt the encoder would truncate is encoded whole, as `embed_view` does."""
    parts = [boilerplate.split(q) for q in queries]
    sums, counts = encoder.token_sums([core for _, core, _ in parts])
    cut = np.array([bool(head or tail) for head, _, tail in parts])
    whole = sums.copy()
    for i in np.flatnonzero(cut):
        for piece in filter(None, (parts[i][0], parts[i][2])):
            piece_sum, piece_count = _piece_sums(encoder, piece)
            whole[i] += piece_sum
            counts[i] += piece_count
    out = np.concatenate([unit_rows(whole), unit_rows(sums * cut[:, None])], axis=1)
    too_long = [i for i, q in enumerate(queries) if not encoder.reads_whole(len(q), int(counts[i]))]
    if too_long:
        d = sums.shape[1]
        out[too_long, :d] = encoder.encode([queries[i] for i in too_long])
        questions = [i for i in too_long if cut[i]]
        if questions:
            out[questions, d:] = encoder.encode([parts[i][1] for i in questions])
    return out


#: per encoder (held weakly), boilerplate text -> (its token vectors' sum, its token count)
_PIECES: weakref.WeakKeyDictionary[SumsTokens, dict[str, tuple[FloatMatrix, int]]] = (
    weakref.WeakKeyDictionary()
)


def _piece_sums(encoder: SumsTokens, piece: str) -> tuple[FloatMatrix, int]:
    kept = _PIECES.setdefault(encoder, {})
    found = kept.get(piece)
    if found is None:  # (no second lookup: another thread may clear `kept` meanwhile)
        if len(kept) >= 4096:
            kept.clear()
        sums, counts = encoder.token_sums([piece])
        found = kept[piece] = (sums[0], int(counts[0]))
    return found


def split_view(xs: FloatMatrix, view: str) -> tuple[FloatMatrix, FloatMatrix]:
    """(what the task-type network reads, what only the question residual reads) of embedded
    queries. The task type is best told by the whole prompt, a query's own difficulty by its
    question; `head+tail` feeds both halves to the network.
    """
    if view != "question":
        return xs, xs[:, :0]
    d = xs.shape[1] // 2
    return xs[:, :d], xs[:, d:]


def has_question(extra: FloatMatrix) -> npt.NDArray[np.bool_]:
    """Which rows of the `question` view's second half hold a question (the rest are zeros)."""
    return np.asarray(np.any(extra != 0, axis=1))


def leaf_view(encoder: Encoder, texts: list[str], view: str) -> FloatMatrix:
    """Leaf-text vectors in the layout of the network's query input."""
    e = np.asarray(encoder.encode(texts), dtype=np.float64)
    return np.concatenate([e, e], axis=1) / np.sqrt(2.0) if view == "head+tail" else e


def log_length(queries: Sequence[str]) -> FloatMatrix:
    """log(1 + characters) per query: a property the unit-length embedding cannot see."""
    return np.log1p(np.fromiter((len(q) for q in queries), np.float64, len(queries)))
