"""What TRouter reads of a query: its embedding (whole, or head and tail) and its length.

An encoder reads at most its window (256 word pieces for MiniLM). Long prompts often put
few-shot examples first and the question last, so with `text_view="head+tail"` a prompt longer
than `tail_chars` gets a second embedding of its last `tail_chars` characters, concatenated to
the first (short queries repeat their one embedding). Leaf texts are short: both halves agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from trouter.encode import Embeddings, Encoder

TEXT_VIEWS = ("full", "head+tail")
FloatMatrix = npt.NDArray[np.float64]


def tail_text(query: str, chars: int) -> str:
    """The last `chars` characters of a query, starting at a word boundary."""
    if len(query) <= chars:
        return query
    tail = query[-chars:]
    cut = tail.find(" ")
    return tail[cut + 1 :] if 0 <= cut < chars // 4 else tail


def embed_view(encoder: Encoder, queries: list[str], view: str, tail_chars: int) -> Embeddings:
    """Unit-length query vectors [n, d] ("full") or [n, 2d] ("head+tail")."""
    head = encoder.encode(queries)
    if view == "full":
        return head
    tails = [tail_text(q, tail_chars) for q in queries]
    tail = head.copy()
    longer = [i for i, (q, t) in enumerate(zip(queries, tails, strict=True)) if t != q]
    if longer:
        tail[longer] = encoder.encode([tails[i] for i in longer])
    # Each half is unit-length, so the concatenation divided by sqrt(2) is too.
    return (np.concatenate([head, tail], axis=1) / np.sqrt(2.0)).astype(np.float32)


def leaf_view(encoder: Encoder, texts: list[str], view: str) -> FloatMatrix:
    """Leaf-text vectors in the same layout as the queries'."""
    e = np.asarray(encoder.encode(texts), dtype=np.float64)
    return np.concatenate([e, e], axis=1) / np.sqrt(2.0) if view != "full" else e


def log_length(queries: Sequence[str]) -> FloatMatrix:
    """log(1 + characters) per query: a property the unit-length embedding cannot see."""
    return np.log1p(np.fromiter((len(q) for q in queries), np.float64, len(queries)))
