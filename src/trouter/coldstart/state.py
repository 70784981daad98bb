"""The cold-start run directory: where each step's output lives, which steps are done, and on
which inputs.

`coldstart.json` records, per finished step, a fingerprint of what the step read (profile
fields, the upstream files' contents, options) and the step's typed result. A step is skipped on
a rerun when its output files exist and its fingerprint still matches; editing an upstream file
by hand (say, the taxonomy) changes the fingerprint of everything below it, so those steps are
redone and the edit is respected. Every file here is written atomically (tmp + fsync + rename).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from trouter.errors import ConfigError, DataError
from trouter.paths import atomic_write_text

STEPS: tuple[str, ...] = ("taxonomy", "items", "labels", "router", "report", "summary")
STATE_FILE = "coldstart.json"
LOCK_FILE = "coldstart.lock"
FORMAT = "trouter-coldstart/1"


def check_step(name: str, option: str) -> str:
    """`name` if it is a step, else a one-line error naming the steps."""
    if name not in STEPS:
        raise ConfigError(f"{option}: unknown step {name!r}; the steps are {', '.join(STEPS)}")
    return name


@dataclass(frozen=True)
class RunPaths:
    """Every file a cold-start run writes under its output directory."""

    out: Path

    @property
    def taxonomy(self) -> Path:
        return self.out / "taxonomy.yaml"

    @property
    def items(self) -> Path:
        return self.out / "items.jsonl"

    @property
    def stray_items(self) -> Path:
        """Items set aside because their leaf left the taxonomy (kept, never deleted)."""
        return self.out / "items.stray.jsonl"

    @property
    def dataset(self) -> Path:
        return self.out / "dataset.parquet"

    @property
    def observations(self) -> Path:
        return self.out / "observations.jsonl"

    @property
    def router(self) -> Path:
        return self.out / "router"

    @property
    def split(self) -> Path:
        """The train / validation / held-out query ids, saved inside the router directory."""
        return self.router / "coldstart-split.json"

    @property
    def report_json(self) -> Path:
        return self.out / "report.json"

    @property
    def report_md(self) -> Path:
        return self.out / "report.md"

    @property
    def report_png(self) -> Path:
        return self.out / "report.png"

    @property
    def summary(self) -> Path:
        return self.out / "summary.json"

    @property
    def state(self) -> Path:
        return self.out / STATE_FILE

    @property
    def lock(self) -> Path:
        """Held (with the holder's pid) while a run works in the directory."""
        return self.out / LOCK_FILE

    def outputs(self, step: str) -> tuple[Path, ...]:
        """The files whose presence makes a step's output complete (with its state record)."""
        return {
            "taxonomy": (self.taxonomy,),
            "items": (self.items,),
            "labels": (self.dataset, self.observations),
            "router": (
                self.router / "config.json",
                self.router / "weights.safetensors",
                self.split,
            ),
            "report": (self.report_json, self.report_md, self.report_png),
            "summary": (self.summary,),
        }[step]


# ---------------------------------------------------------------------------------- digests


def digest(value: Any) -> str:
    """A short stable hash of a JSON-able value."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def file_digest(*paths: Path) -> str:
    """A short hash of the bytes of some files (a missing file hashes as empty)."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode())
        if path.is_file():
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:20]


def lines_digest(path: Path) -> str:
    """A hash of a JSON Lines file's complete lines, in any order (appends from concurrent
    leaves land in any order; the set of items is what matters)."""
    if not path.is_file():
        return ""
    with path.open("rb") as fh:
        lines = sorted(line for line in fh if line.endswith(b"\n") and line.strip())
    return hashlib.sha256(b"".join(lines)).hexdigest()[:20]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------- state


class StepRecord(BaseModel):
    """A finished step: what it read (fingerprint), when it finished, what it produced."""

    fingerprint: str
    finished: str
    result: dict[str, Any]


class RunStateFile(BaseModel):
    format: str = FORMAT
    profile: str = ""
    steps: dict[str, StepRecord] = {}


class RunState:
    """The step records of one output directory (see the module docstring)."""

    def __init__(self, paths: RunPaths, profile: str) -> None:
        self.paths = paths
        self.data = RunStateFile(profile=profile)
        path = paths.state
        if path.is_file():
            try:
                self.data = RunStateFile.model_validate_json(path.read_text(encoding="utf-8"))
            except (ValidationError, ValueError) as exc:
                raise DataError(
                    f"{path}: not a readable cold-start state file ({str(exc).splitlines()[0]}); "
                    "move it away to start the directory afresh (outputs are reused when they match)"
                ) from None
            if self.data.format != FORMAT:
                raise DataError(f"{path}: unknown format {self.data.format!r} (expected {FORMAT})")
            if self.data.profile and self.data.profile != profile:
                raise ConfigError(
                    f"{paths.out} holds a cold start of profile {self.data.profile!r}, not "
                    f"{profile!r}; use another --out directory"
                )

    def record(self, step: str) -> StepRecord | None:
        return self.data.steps.get(step)

    def is_done(self, step: str, fingerprint: str) -> bool:
        """The step finished on these very inputs and its outputs are all there."""
        record = self.record(step)
        return (
            record is not None
            and record.fingerprint == fingerprint
            and all(p.exists() for p in self.paths.outputs(step))
        )

    def mark(self, step: str, fingerprint: str, result: BaseModel) -> None:
        self.data.steps[step] = StepRecord(
            fingerprint=fingerprint, finished=now(), result=result.model_dump(mode="json")
        )
        self._save()

    def forget(self, step: str) -> None:
        if self.data.steps.pop(step, None) is not None:
            self._save()

    def _save(self) -> None:
        atomic_write_text(self.paths.state, self.data.model_dump_json(indent=2) + "\n")
