"""`routellm_evals`: RouteLLM's per-query outcomes of GPT-4-1106 and Mixtral-8x7B (Apache-2.0).

Source: github.com/lm-sys/RouteLLM at 0b64fdaf, `routellm/evals/**` (see the folder's
PROVENANCE.md). Three benchmarks, every query answered by both models:

- MMLU, all 14,042 test questions of 57 subjects; score 1/0 (first generated letter correct).
  Task `mmlu/<category>/<subject>` with the four standard categories (`MMLU_CATEGORIES`).
- GSM8K, the 1,319 test questions; score 1/0 (last number of the answer correct). Task `gsm8k`.
- MT-Bench, 80 two-turn questions graded 1-10 per turn by a GPT-4 judge. The score is the mean
  of the two turns' grades rescaled to [0, 1] as (grade - 1) / 9. The query text is the first
  turn (RouteLLM routes on it); the chosen model answers both turns. Task `mt_bench/<category>`.

There is no shipped split; evaluation makes a seeded one.

Cost: the files hold none, so cost = list price x estimated tokens (`trouter.tokens`):

- prices ($ per 1M input / output tokens): gpt-4-1106-preview 10 / 30 (OpenAI's list price);
  Mixtral-8x7B-Instruct 0.24 / 0.24 (the figure RouteLLM's write-up uses).
- MMLU was asked 5-shot (RouteLLM's generate_responses.py: a one-line header plus five dev
  examples of the same subject, at most 1,536 tokens) and generated one token. The dev examples
  are not in the snapshot, so each counts as the subject's mean question length plus the answer.
- GSM8K was asked 8-shot (the first 8 GSM8K train items, not in the snapshot; each counted as
  the mean test question plus its reference solution from test.jsonl); the output tokens are
  estimated from each model's own recorded response.
- MT-Bench: the answers are quoted inside the judge prompts, so output tokens are estimated from
  each model's own two answers; input = turn 1 + (turn 1 + its answer + turn 2), the second
  request carrying the conversation so far.
Chat-format overhead (a few tokens per message) is ignored throughout.

The `contaminated_prompts.jsonl` files list eval prompts that overlap RouteLLM's Arena-based
router *training* data; RouteLLM drops them to evaluate its own Arena-trained routers. Nothing
here trains on Arena data, and our protocols split this dataset itself, so the rows are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trouter.data.dataset import RoutingDataset
from trouter.errors import DataError
from trouter.pool import Pool
from trouter.tokens import estimate_tokens, estimate_tokens_many

NAME = "routellm_evals"
GPT4 = "gpt-4-1106-preview"
MIXTRAL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
MODELS = (GPT4, MIXTRAL)
PRICES = {GPT4: (10.0, 30.0), MIXTRAL: (0.24, 0.24)}  # $ per 1M input / output tokens
COST_NOTE = (
    "estimated: list price x estimated tokens (gpt-4-1106-preview $10/$30, Mixtral-8x7B "
    "$0.24/$0.24 per 1M in/out); prompts with RouteLLM's 5-shot (MMLU) / 8-shot (GSM8K) "
    "context; outputs: 1 token (MMLU), the recorded answers (GSM8K, MT-Bench)"
)

# The subject -> category map of the MMLU paper (Hendrycks et al. 2021, the authors'
# categories.py): 18 STEM, 13 humanities, 12 social-science and 14 other subjects. The
# lm-evaluation-harness copy differs in one subject only: it files anatomy under STEM.
MMLU_CATEGORIES: dict[str, str] = {
    "abstract_algebra": "stem",
    "anatomy": "other",
    "astronomy": "stem",
    "business_ethics": "other",
    "clinical_knowledge": "other",
    "college_biology": "stem",
    "college_chemistry": "stem",
    "college_computer_science": "stem",
    "college_mathematics": "stem",
    "college_medicine": "other",
    "college_physics": "stem",
    "computer_security": "stem",
    "conceptual_physics": "stem",
    "econometrics": "social_sciences",
    "electrical_engineering": "stem",
    "elementary_mathematics": "stem",
    "formal_logic": "humanities",
    "global_facts": "other",
    "high_school_biology": "stem",
    "high_school_chemistry": "stem",
    "high_school_computer_science": "stem",
    "high_school_european_history": "humanities",
    "high_school_geography": "social_sciences",
    "high_school_government_and_politics": "social_sciences",
    "high_school_macroeconomics": "social_sciences",
    "high_school_mathematics": "stem",
    "high_school_microeconomics": "social_sciences",
    "high_school_physics": "stem",
    "high_school_psychology": "social_sciences",
    "high_school_statistics": "stem",
    "high_school_us_history": "humanities",
    "high_school_world_history": "humanities",
    "human_aging": "other",
    "human_sexuality": "social_sciences",
    "international_law": "humanities",
    "jurisprudence": "humanities",
    "logical_fallacies": "humanities",
    "machine_learning": "stem",
    "management": "other",
    "marketing": "other",
    "medical_genetics": "other",
    "miscellaneous": "other",
    "moral_disputes": "humanities",
    "moral_scenarios": "humanities",
    "nutrition": "other",
    "philosophy": "humanities",
    "prehistory": "humanities",
    "professional_accounting": "other",
    "professional_law": "humanities",
    "professional_medicine": "other",
    "professional_psychology": "social_sciences",
    "public_relations": "social_sciences",
    "security_studies": "social_sciences",
    "sociology": "social_sciences",
    "us_foreign_policy": "social_sciences",
    "virology": "other",
    "world_religions": "humanities",
}

MMLU_SHOTS = 5
MMLU_SHOT_BUDGET = 1536  # RouteLLM drops shots until the examples fit in this many tokens
MMLU_OUTPUT_TOKENS = 1  # generated with max_new_tokens=1
GSM8K_SHOTS = 8


@dataclass(frozen=True)
class _Part:
    """One benchmark's queries (query_id, query, task) and their [n, 2] per-model matrices."""

    rows: pd.DataFrame
    scores: np.ndarray
    tokens_in: np.ndarray
    tokens_out: np.ndarray


def _folder(root: Path) -> Path:
    folder = root / NAME / "routellm" / "evals"
    if not folder.is_dir():
        raise DataError(f"{NAME}: folder not found: {folder}")
    return folder


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{NAME}: missing file {path}")
    return pd.read_csv(path)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(f"{NAME}: missing file {path}")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _scores(frame: pd.DataFrame) -> np.ndarray:
    return frame[list(MODELS)].astype(bool).to_numpy(dtype=np.float64)


def _mmlu(folder: Path) -> _Part:
    files = sorted((folder / "mmlu" / "responses").glob("mmlu_*.csv"))
    subjects = [f.stem.removeprefix("mmlu_") for f in files]
    unknown = sorted(set(subjects) - set(MMLU_CATEGORIES))
    if len(files) != len(MMLU_CATEGORIES) or unknown:
        raise DataError(
            f"{NAME}: expected the 57 MMLU subject files, found {len(files)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    parts, scores, t_in = [], [], []
    for path, subject in zip(files, subjects, strict=True):
        frame = _read_csv(path)
        prompt_tokens = estimate_tokens_many(frame["prompt"]).astype(np.float64)
        header = estimate_tokens(
            "The following are multiple choice questions (with answers) about "
            + subject.replace("_", " ")
            + ".\n\n"
        )
        shot = float(prompt_tokens.mean()) + 2.0  # a dev example: question + " X\n\n"
        shots = min(MMLU_SHOTS, int(max(MMLU_SHOT_BUDGET - header, 0) // shot))
        parts.append(
            pd.DataFrame(
                {
                    "query_id": [f"mmlu-{subject}-{i}" for i in range(len(frame))],
                    "query": frame["prompt"],
                    "task": f"mmlu/{MMLU_CATEGORIES[subject]}/{subject}",
                }
            )
        )
        scores.append(_scores(frame))
        t_in.append(prompt_tokens + header + shots * shot)
    rows = pd.concat(parts, ignore_index=True)
    tokens_in = np.repeat(np.concatenate(t_in)[:, None], len(MODELS), axis=1)
    tokens_out = np.full((len(rows), len(MODELS)), float(MMLU_OUTPUT_TOKENS))
    return _Part(rows, np.vstack(scores), tokens_in, tokens_out)


def _gsm8k(folder: Path) -> _Part:
    frame = _read_csv(folder / "gsm8k" / "gsm8k_responses.csv")
    reference = _read_jsonl(folder / "gsm8k" / "test.jsonl")
    shot = float(
        np.mean(
            estimate_tokens_many(
                f"Question: {r['question']}\nAnswer: {r['answer']}\n\n" for r in reference
            )
        )
    )
    question = estimate_tokens_many(f"Question: {q}\nAnswer:" for q in frame["prompt"])
    tokens_in = np.repeat(question.astype(np.float64)[:, None] + GSM8K_SHOTS * shot, 2, axis=1)
    tokens_out = np.column_stack(
        [estimate_tokens_many(frame[f"{m}_response"].fillna("").astype(str)) for m in MODELS]
    ).astype(np.float64)
    rows = pd.DataFrame(
        {
            "query_id": [f"gsm8k-{i}" for i in range(len(frame))],
            "query": frame["prompt"],
            "task": "gsm8k",
        }
    )
    return _Part(rows, _scores(frame), tokens_in, tokens_out)


_CONVERSATION_START = "<|The Start of Assistant A's Conversation with User|>"
_CONVERSATION_END = "<|The End of Assistant A's Conversation with User|>"


def _answers(judge_prompt: str) -> tuple[str, str]:
    """The assistant's two answers, as quoted in a multi-turn judge prompt."""
    conversation = judge_prompt.split(_CONVERSATION_START, 1)[-1].split(_CONVERSATION_END, 1)[0]
    turns = conversation.split("### Assistant A:")
    if len(turns) != 3:
        raise DataError(f"{NAME}: an MT-Bench judge prompt does not hold two assistant turns")
    first = turns[1].split("### User:", 1)[0]
    return first.strip(), turns[2].strip()


def _mt_bench(folder: Path) -> _Part:
    questions = _read_jsonl(folder / "mt_bench" / "question.jsonl")
    grades: dict[tuple[int, str], list[float]] = {}
    answers: dict[tuple[int, str], tuple[str, str]] = {}
    for row in _read_jsonl(folder / "mt_bench" / "judgements.jsonl"):
        key = (int(row["question_id"]), str(row["model"]))
        grades.setdefault(key, []).append(float(row["score"]))
        if int(row["turn"]) == 2:
            answers[key] = _answers(str(row["user_prompt"]))
    n, m = len(questions), len(MODELS)
    scores = np.full((n, m), np.nan)
    tokens_in = np.full((n, m), np.nan)
    tokens_out = np.full((n, m), np.nan)
    for i, question in enumerate(questions):
        turn1, turn2 = (estimate_tokens(t) for t in question["turns"][:2])
        for j, model in enumerate(MODELS):
            key = (int(question["question_id"]), model)
            if len(grades.get(key, [])) != 2 or key not in answers:
                raise DataError(f"{NAME}: MT-Bench question {key[0]} lacks two grades for {model}")
            # Both turns' grades averaged (RouteLLM's reading), 1-10 rescaled to [0, 1].
            scores[i, j] = (np.mean(grades[key]) - 1.0) / 9.0
            answer1, answer2 = (estimate_tokens(a) for a in answers[key])
            tokens_in[i, j] = turn1 + (turn1 + answer1 + turn2)
            tokens_out[i, j] = answer1 + answer2
    rows = pd.DataFrame(
        {
            "query_id": [f"mt_bench-{q['question_id']}" for q in questions],
            "query": [q["turns"][0] for q in questions],
            "task": [f"mt_bench/{q['category']}" for q in questions],
        }
    )
    return _Part(rows, scores, tokens_in, tokens_out)


def load_routellm_evals(root: Path) -> RoutingDataset:
    """RouteLLM's MMLU / GSM8K / MT-Bench outcomes for GPT-4-1106 and Mixtral-8x7B, list-price cost."""
    folder = _folder(root)
    parts = [_mmlu(folder), _gsm8k(folder), _mt_bench(folder)]
    rows = pd.concat([p.rows for p in parts], ignore_index=True)
    scores = np.vstack([p.scores for p in parts])
    tokens_in = np.vstack([p.tokens_in for p in parts])
    tokens_out = np.vstack([p.tokens_out for p in parts])
    pool = Pool.from_prices(PRICES)
    costs = np.column_stack(
        [pool[m].cost(tokens_in[:, j], tokens_out[:, j]) for j, m in enumerate(MODELS)]
    )
    return RoutingDataset.from_matrices(
        query_ids=rows["query_id"].tolist(),
        queries=rows["query"].tolist(),
        models=MODELS,
        scores=scores,
        costs=costs,
        tasks=rows["task"].tolist(),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        name=NAME,
        pool=pool,
        cost_note=COST_NOTE,
    )
