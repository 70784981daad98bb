"""The task structure TRouter learns over: taxonomy leaves, their ancestors, and the prior.

`TaskStructure` turns a `Taxonomy` into the arrays the network needs:

- `leaves`: the leaf paths, one latent task type each (the columns of q(t|x));
- `nodes` and `path_matrix[t, n]` = 1 when node n is leaf t or one of its ancestors, so a leaf's
  decoder can be written as the sum of per-node offsets along its path (hierarchical shrinkage);
- `prior(tasks, smoothing)`: the per-query prior over leaves from each query's task label.

A task label is matched to the deepest taxonomy node that is a prefix of it ("math/algebra/hard"
matches "math/algebra" when the tree stops there); the prior of a label at an internal node is
spread evenly over the leaves under it. A label outside the taxonomy, or "", gives no prior.

Smoothing s spreads the prior along the tree: with d the number of levels from the label's node
up to the lowest common ancestor with a leaf (0 for the label's own leaves, 1 for its siblings'
leaves, ...; leaves under other roots meet at a virtual super-root), the mass of the group at
distance d is proportional to s^d (1 - s), the farthest group taking the remaining s^D, each group
spread evenly over its leaves. s = 0 is the paper's one-hot prior.

Without task labels, `latent_structure` clusters the query embeddings (seeded k-means) into
latent task types and names each by the words that set its queries apart, so a decision can
still be explained ("~python function list").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trouter.errors import ConfigError
from trouter.taxonomy import SEP, Taxonomy, TaxonomyNode

FloatMatrix = npt.NDArray[np.float64]
_WORD = re.compile(r"[a-z][a-z0-9_+#-]{2,}")
_STOP_WORDS = """
the and for that this with from are was were what which when where who whom how why you your can
could would should will does did has have had not but all any its into than then them they their
there these those each only also more most some such very answer question following choose
correct option options print single letter without explanation please given
"""
_STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True)
class TaskStructure:
    """Leaves, nodes and the leaf-to-path incidence of one taxonomy (see the module docstring)."""

    taxonomy: Taxonomy
    leaves: tuple[str, ...]
    nodes: tuple[str, ...]
    path_matrix: FloatMatrix  # [T, N]

    @classmethod
    def from_taxonomy(cls, taxonomy: Taxonomy) -> TaskStructure:
        leaves = tuple(taxonomy.leaf_paths())
        nodes = tuple(taxonomy.node_paths())
        index = {n: i for i, n in enumerate(nodes)}
        path = np.zeros((len(leaves), len(nodes)))
        for t, leaf in enumerate(leaves):
            for node in [*Taxonomy.ancestors(leaf), leaf]:
                path[t, index[node]] = 1.0
        return cls(taxonomy, leaves, nodes, path)

    @property
    def n_leaves(self) -> int:
        return len(self.leaves)

    def leaf_texts(self) -> list[str]:
        """The text embedded for each leaf: its path, definitions and example."""
        return [self.taxonomy.leaf_text(leaf) for leaf in self.leaves]

    def match(self, task: str) -> str | None:
        """The deepest taxonomy node that is a prefix of the task label (None if there is none)."""
        if not task:
            return None
        parts = task.split(SEP)
        for depth in range(len(parts), 0, -1):
            candidate = SEP.join(parts[:depth])
            if candidate in self.taxonomy:
                return candidate
        return None

    def _leaf_distances(self, node: str) -> npt.NDArray[np.intp]:
        """Levels from `node` up to its lowest common ancestor with each leaf."""
        own = node.split(SEP)
        out = np.empty(self.n_leaves, dtype=np.intp)
        for t, leaf in enumerate(self.leaves):
            parts = leaf.split(SEP)
            common = 0
            while common < min(len(own), len(parts)) and own[common] == parts[common]:
                common += 1
            out[t] = len(own) - common
        return out

    def prior(self, tasks: Sequence[str], smoothing: float) -> tuple[FloatMatrix, FloatMatrix]:
        """(prior [n, T], labelled [n] as 0/1): the prior of each query from its task label."""
        if not 0.0 <= smoothing < 1.0:
            raise ConfigError(f"trouter: prior_smoothing must be in [0, 1), got {smoothing}")
        rows: dict[str, FloatMatrix] = {}
        out = np.zeros((len(tasks), self.n_leaves))
        labelled = np.zeros(len(tasks))
        for i, task in enumerate(tasks):
            node = self.match(task)
            if node is None:
                continue
            if node not in rows:
                rows[node] = self._prior_row(node, smoothing)
            out[i] = rows[node]
            labelled[i] = 1.0
        return out, labelled

    def _prior_row(self, node: str, smoothing: float) -> FloatMatrix:
        distance = self._leaf_distances(node)
        groups = sorted(set(distance.tolist()))
        row = np.zeros(self.n_leaves)
        remaining = 1.0
        for k, d in enumerate(groups):
            mass = remaining if k == len(groups) - 1 else remaining * (1.0 - smoothing)
            members = distance == d
            row[members] = mass / members.sum()
            remaining -= mass
        return row


# ---------------------------------------------------------------------- latent task types
def kmeans(x: FloatMatrix, k: int, seed: int, iterations: int = 50) -> npt.NDArray[np.intp]:
    """Cluster labels of spherical k-means (cosine) with k-means++ seeding; deterministic."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    centres = [x[rng.integers(n)]]
    closest = 1.0 - x @ centres[0]
    for _ in range(1, k):
        weights = np.maximum(closest, 0.0)
        total = weights.sum()
        pick = rng.choice(n, p=weights / total) if total > 0 else rng.integers(n)
        centres.append(x[pick])
        closest = np.minimum(closest, 1.0 - x @ x[pick])
    c = np.stack(centres)
    labels = np.zeros(n, dtype=np.intp)
    for step in range(iterations):
        new = np.argmax(x @ c.T, axis=1)
        if step and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            if len(members):
                centre = members.sum(axis=0)
                c[j] = centre / max(np.linalg.norm(centre), 1e-12)
    return labels


def _cluster_names(queries: Sequence[str], labels: npt.NDArray[np.intp], k: int) -> list[str]:
    """Three words that set each cluster's queries apart (by document-frequency lift)."""
    docs = [set(_WORD.findall(q.lower())) - _STOP for q in queries]
    overall = Counter(w for d in docs for w in d)
    n = len(docs)
    names: list[str] = []
    for j in range(k):
        members = [d for d, label in zip(docs, labels, strict=True) if label == j]
        inside = Counter(w for d in members for w in d)
        size = max(len(members), 1)
        scored = sorted(
            (w for w, c in inside.items() if c >= max(2, 0.1 * size)),
            key=lambda w: (-(inside[w] / size) / ((overall[w] + 1) / (n + 1)), w),
        )
        words = " ".join(scored[:3]) or "misc"
        name = f"~{words}"
        while name in names:
            name += "'"
        names.append(name)
    return names


def latent_structure(
    queries: Sequence[str], x: FloatMatrix, k: int, seed: int
) -> tuple[TaskStructure, list[str], FloatMatrix]:
    """(structure, a task label per query, leaf vectors [k, d]) from k-means on the embeddings.

    The leaf vectors are the unit-length cluster centres: latent types have no text to embed.
    """
    k = max(1, min(k, len(queries)))
    labels = kmeans(x, k, seed)
    names = _cluster_names(queries, labels, k)
    taxonomy = Taxonomy(
        levels=["latent type"],
        roots=[
            TaxonomyNode(name=name, definition="a latent task type found by clustering queries")
            for name in names
        ],
    )
    centres = np.zeros((k, x.shape[1]))
    for j in range(k):
        members = x[labels == j]
        if len(members):
            centre = members.sum(axis=0)
            centres[j] = centre / max(np.linalg.norm(centre), 1e-12)
    structure = TaskStructure.from_taxonomy(taxonomy)
    # TaxonomyNode cleans names; read them back so labels match the leaf paths exactly.
    leaf_names = list(structure.leaves)
    return structure, [leaf_names[j] for j in labels], centres
