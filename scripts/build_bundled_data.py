"""Regenerate the bundled data (src/trouter/data/bundled/) from the shared benchmark folder.

Maintainers only: run after changing the llmrouter_9models loader, then commit the result.

    python scripts/build_bundled_data.py [--data-root ../shared/data]

Writes llmrouter_9models.parquet (zstd-compressed, the same table and metadata that
`RoutingDataset.save` writes), LICENSE (the source's license text, copied) and ATTRIBUTION.md
(source repository, commit, input files with their SHA-256, and every transformation).
Only MIT / Apache-2.0 data may be bundled; routerbench_subset has no license and never is.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from trouter.data.bundled import BUNDLED_FILE, load_bundled
from trouter.data.sources import llmrouter

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "trouter" / "data" / "bundled"
SOURCE_REPO = "github.com/ulab-uiuc/LLMRouter"
SOURCE_COMMIT = "4e7a796942ce26e9d5f2b93191c7c2585c99c2e3"
INPUTS = (
    "data/dcrouter_preprocessed/train.json",
    "data/dcrouter_preprocessed/test.json",
    "data/example_data/query_data/default_query_train.jsonl",
    "data/example_data/query_data/default_query_test.jsonl",
    "data/example_data/llm_candidates/default_llm.json",
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def attribution(source: Path, counts: Counter, n_queries: int, size: int) -> str:
    files = "\n".join(f"| `{p}` | `{sha256(source / p)}` |" for p in INPUTS)
    tasks = ", ".join(f"{t} {n}" for t, n in sorted(counts.items()))
    outputs = ", ".join(f"{t} {n}" for t, n in llmrouter.OUTPUT_TOKENS.items())
    return f"""# Bundled data: attribution

`{BUNDLED_FILE}` ({size / 1e6:.2f} MB) is derived from the LLMRouter library by the U Lab at
UIUC, released under the MIT License (full text in `LICENSE` next to this file,
Copyright (c) 2024 U Lab @UIUC).

| item | value |
| --- | --- |
| repository | {SOURCE_REPO} |
| commit | `{SOURCE_COMMIT}` |
| license | MIT |

## Input files (at that commit)

| path | SHA-256 |
| --- | --- |
{files}

## What was transformed

Built by `scripts/build_bundled_data.py` with `trouter.data.sources.llmrouter`
(`load_llmrouter_9models`); `trouter.data.bundled.load_bundled()` returns the same dataset.

- Scores: the 9 scored models' 0-1 scores, unchanged.
- Task labels: each scored question joined to the query files on its whitespace-stripped text.
  Six train questions listed under two tasks were given their non-MMLU label (LLMRouter's MMLU
  items come from MMLU's auxiliary_train, which is built from ARC and OpenBookQA).
- Split: LLMRouter's own train/test split, with the 119 test questions whose text also appears
  in train removed. {n_queries} queries remain. Per task: {tasks}.
- Query text: stripped of leading and trailing whitespace. Ids `llmr-<split>-<position>`.
- Cost: not in the source. Estimated as the numeric list prices of `default_llm.json` x
  estimated tokens: input = the question with its options and LLMRouter's instruction template
  (`trouter.tokens` estimate), output = a constant per task ({outputs}), the same for every
  model. These are estimates, stated in the dataset's cost note.
- Stored as trouter's long table (query x model rows) in Parquet.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()
    root = Path(args.data_root)
    source = root / llmrouter.NAME
    dataset = llmrouter.load_llmrouter_9models(root)

    with tempfile.TemporaryDirectory() as tmp:
        plain = dataset.save(Path(tmp) / "plain.parquet")
        table = pq.read_table(plain)  # keeps save()'s schema metadata (name, models, pool, note)
        staged = OUT / (BUNDLED_FILE + ".tmp")  # same folder, so the rename is atomic
        pq.write_table(table, staged, compression="zstd", compression_level=19)
        staged.replace(OUT / BUNDLED_FILE)
    shutil.copyfile(source / "LICENSE", OUT / "LICENSE")
    size = (OUT / BUNDLED_FILE).stat().st_size
    counts = Counter(dataset.tasks)
    (OUT / "ATTRIBUTION.md").write_text(
        attribution(source, counts, dataset.n_queries, size), encoding="utf-8"
    )
    again = load_bundled()
    assert again.query_ids == dataset.query_ids and again.models == dataset.models
    print(f"wrote {OUT / BUNDLED_FILE} ({size / 1e6:.2f} MB): {again}")


if __name__ == "__main__":
    main()
