"""`llmrouter_9models`: 9 NIM-served open models on 14 tasks, from ULab's LLMRouter (MIT).

Source: github.com/ulab-uiuc/LLMRouter at 4e7a7969 (see the folder's PROVENANCE.md). The score
files (`dcrouter_preprocessed/{train,test}.json`) give each question's 0-1 score for 9 models;
the query files give its task, answer options and metric; `default_llm.json` the prices.

How the files become a `RoutingDataset`:

- Task labels: a score question joins to the query files on its whitespace-stripped text. Six
  train questions appear under two tasks (mmlu and arc_challenge / openbook_qa). LLMRouter draws
  its "mmlu" items from MMLU's auxiliary_train split, which is itself made of ARC, OpenBookQA and
  other sets, so those six are labelled with their source benchmark (the non-mmlu label).
- Split: the shipped train/test split (`split` column). The 119 test questions whose text also
  appears in train are dropped, leaving 381 test queries.
- Query ids: `llmr-train-NNNN` / `llmr-test-NNN`, the position in the score file.
- Models: the 9 with scores, in `MODELS` order; prices are the numeric `input_price` /
  `output_price` of default_llm.json (the free-text `feature` sometimes quotes other prices).

Cost (no tokens or responses are published): cost = price x (input tokens + output tokens),
estimated with `trouter.tokens`.

- Input: the question, plus its answer options (MC tasks) or test asserts (MBPP), plus the
  instruction template LLMRouter wraps each task in (about 10-80 tokens, `PROMPT_OVERHEAD`).
- Output: a constant per task (`OUTPUT_TOKENS`), the same for every model. The anchors: in
  routellm_evals, GPT-4 and Mixtral answer GSM8K 8-shot in ~110 tokens (~1.15x the reference
  solution); LLMRouter asks zero-shot, where chat models explain more, so math answers are
  taken as ~1.5x their reference solution (GSM8K ~96 tokens, MATH ~232). MBPP answers of the
  11 RouterBench models run 160-290 tokens with prose; LLMRouter asks for code only. MC prompts
  ask for the letter in parentheses, which chat models give with a sentence of justification.
  Short-answer QA gets a sentence; CommonGen the requested 2-3 sentence paragraph.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np

from trouter.data.dataset import RoutingDataset
from trouter.errors import DataError
from trouter.pool import Pool
from trouter.tokens import estimate_tokens

NAME = "llmrouter_9models"
MODELS = (
    "qwen2.5-7b-instruct",
    "llama3-chatqa-1.5-8b",
    "llama3-chatqa-1.5-70b",
    "llama-3.1-nemotron-51b-instruct",
    "llama-3.3-nemotron-super-49b-v1",
    "mistral-7b-instruct-v0.3",
    "gemma-2-9b-it",
    "codegemma-7b",
    "llama-3.1-8b-instruct",
)

# Estimated output tokens per task (see the module docstring for the reasoning).
OUTPUT_TOKENS: dict[str, int] = {
    "mmlu": 30,
    "gpqa": 30,
    "arc_challenge": 30,
    "commonsense_qa": 30,
    "openbook_qa": 30,
    "agentverse-logicgrid": 150,  # a house puzzle, no request for brevity: models reason first
    "gsm8k": 150,
    "agentverse-mgsm": 150,
    "math": 350,
    "mbpp": 150,
    "human_eval": 120,  # the function body only
    "natural_qa": 25,
    "trivia_qa": 25,
    "commongen": 100,
}
# Tokens of the instruction template LLMRouter's prompting.py wraps around each task's query.
PROMPT_OVERHEAD: dict[str, int] = {
    "mmlu": 38,
    "gpqa": 38,
    "arc_challenge": 30,
    "commonsense_qa": 30,
    "openbook_qa": 30,
    "gsm8k": 12,
    "math": 29,
    "mbpp": 45,
    "human_eval": 53,
    "commongen": 79,
}
TOKENS_PER_OPTION = 3  # "A. " / "(A) " and a line break around each answer option
COST_NOTE = (
    "estimated: list price x estimated tokens (prompt with its options and LLMRouter's template, "
    "plus a per-task output length: 25 short QA, 30 multiple choice, 100-150 code / GSM8K / "
    "logic grid, 350 MATH); the same output length for every model"
)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{NAME}: missing file {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"{NAME}: missing file {path}")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _options(raw: object) -> list[str]:
    """The answer options (or MBPP test asserts) of a query-file row, as texts."""
    if raw is None:
        return []
    value = raw
    if isinstance(raw, str):
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return [raw]
    if isinstance(value, dict):
        value = value.get("text", [])
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _pick(labels: list[dict[str, Any]]) -> dict[str, Any]:
    """One query-file row for a question with one or more labels (see the module docstring)."""
    tasks = sorted({row["task_name"] for row in labels}, key=lambda t: (t == "mmlu", t))
    return next(row for row in labels if row["task_name"] == tasks[0])


def input_tokens(question: str, task: str, options: list[str]) -> int:
    """Estimated prompt tokens of one question as LLMRouter would have sent it."""
    tokens = estimate_tokens(question) + PROMPT_OVERHEAD.get(task, 0)
    if options:
        tokens += sum(estimate_tokens(o) for o in options) + TOKENS_PER_OPTION * len(options)
    return tokens


def load_llmrouter_9models(root: Path) -> RoutingDataset:
    """LLMRouter's 9-model, 14-task scores, joined to task labels, with list-price cost."""
    folder = root / NAME / "data"
    scored = {
        split: _read_json(folder / "dcrouter_preprocessed" / f"{split}.json")
        for split in ("train", "test")
    }
    labels: dict[str, list[dict[str, Any]]] = {}
    for split in ("train", "test"):
        path = folder / "example_data" / "query_data" / f"default_query_{split}.jsonl"
        for row in _read_jsonl(path):
            labels.setdefault(str(row["query"]).strip(), []).append(row)
    catalogue = _read_json(folder / "example_data" / "llm_candidates" / "default_llm.json")
    missing = [m for m in MODELS if m not in catalogue]
    if missing:
        raise DataError(f"{NAME}: default_llm.json lacks prices for {', '.join(missing)}")
    pool = Pool.from_prices(
        {
            m: (float(catalogue[m]["input_price"]), float(catalogue[m]["output_price"]))
            for m in MODELS
        }
    )

    train_texts = {str(item["question"]).strip() for item in scored["train"]}
    ids, queries, tasks, splits, scores, t_in, t_out = [], [], [], [], [], [], []
    for split, items in scored.items():
        width = 4 if split == "train" else 3
        for i, item in enumerate(items):
            text = str(item["question"]).strip()
            if split == "test" and text in train_texts:
                continue  # the same question in both parts of the shipped split
            if text not in labels:
                raise DataError(f"{NAME}: {split} item {i} has no task label in the query files")
            if set(item["scores"]) != set(MODELS):
                raise DataError(f"{NAME}: {split} item {i} does not score exactly the 9 models")
            row = _pick(labels[text])
            task = str(row["task_name"])
            if task not in OUTPUT_TOKENS:
                raise DataError(f"{NAME}: unknown task {task!r} in the query files")
            ids.append(f"llmr-{split}-{i:0{width}d}")
            queries.append(text)
            tasks.append(task)
            splits.append(split)
            scores.append([float(item["scores"][m]) for m in MODELS])
            t_in.append(input_tokens(text, task, _options(row.get("choices"))))
            t_out.append(OUTPUT_TOKENS[task])

    tokens_in = np.asarray(t_in, dtype=np.float64)
    tokens_out = np.repeat(np.asarray(t_out, dtype=np.float64)[:, None], len(MODELS), axis=1)
    return RoutingDataset.from_matrices(
        query_ids=ids,
        queries=queries,
        models=MODELS,
        scores=np.asarray(scores, dtype=np.float64),
        costs=pool.cost(tokens_in, tokens_out),
        tasks=tasks,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        splits=splits,
        name=NAME,
        pool=pool,
        cost_note=COST_NOTE,
    )
