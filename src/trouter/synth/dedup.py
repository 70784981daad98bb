"""Near-duplicate removal by embedding cosine, within a leaf and across the whole item set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trouter.encode import Embeddings, Encoder


@dataclass(frozen=True)
class DedupVerdict:
    keep: bool
    reason: str = ""  # "leaf" | "global" | "batch"
    similarity: float = 0.0


class Deduper:
    """An index of accepted queries' unit embeddings, tagged by leaf.

    A candidate is a duplicate when its cosine with an accepted query of the same leaf reaches
    `leaf_threshold`, or with one of any other leaf reaches `global_threshold`."""

    def __init__(
        self, encoder: Encoder, leaf_threshold: float = 0.9, global_threshold: float = 0.9
    ):
        self.encoder = encoder
        self.leaf_threshold = leaf_threshold
        self.global_threshold = global_threshold
        self._vectors = np.zeros((0, encoder.dim), dtype=np.float32)
        self._size = 0
        self._leaves: list[str] = []

    def __len__(self) -> int:
        return self._size

    def encode(self, texts: Sequence[str]) -> Embeddings:
        return self.encoder.encode(list(texts))

    def add(self, leaf: str, vectors: npt.NDArray[np.float32]) -> None:
        if len(vectors) == 0:
            return
        needed = self._size + len(vectors)
        if needed > len(self._vectors):  # grow by doubling: appends stay amortised O(1)
            grown = np.zeros(
                (max(needed, 2 * len(self._vectors), 64), self.encoder.dim), np.float32
            )
            grown[: self._size] = self._vectors[: self._size]
            self._vectors = grown
        self._vectors[self._size : needed] = vectors
        self._size = needed
        self._leaves.extend([leaf] * len(vectors))

    def check(self, leaf: str, vectors: npt.NDArray[np.float32]) -> list[DedupVerdict]:
        """Verdicts for a batch of candidates of one leaf, in order; a kept candidate counts
        against the later ones of the same batch. Does not add anything to the index."""
        verdicts: list[DedupVerdict] = []
        kept: list[npt.NDArray[np.float32]] = []
        same_leaf = np.array([name == leaf for name in self._leaves], dtype=bool)
        index = self._vectors[: self._size]
        for vec in vectors:
            sims = index @ vec if self._size else np.zeros(0, np.float32)
            leaf_max = float(sims[same_leaf].max()) if same_leaf.any() else -1.0
            other_max = float(sims[~same_leaf].max()) if (~same_leaf).any() else -1.0
            batch_max = float(max((k @ vec for k in kept), default=-1.0))
            if max(leaf_max, batch_max) >= self.leaf_threshold:
                reason = "leaf" if leaf_max >= batch_max else "batch"
                verdicts.append(DedupVerdict(False, reason, max(leaf_max, batch_max)))
            elif other_max >= self.global_threshold:
                verdicts.append(DedupVerdict(False, "global", other_max))
            else:
                verdicts.append(DedupVerdict(True))
                kept.append(vec)
        return verdicts
