"""The JSON shapes the generator model is asked for (sent as `response_format` schemas)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator


class NodeDraft(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    definition: str = ""
    example: str = ""


class NodeSet(BaseModel):
    nodes: list[NodeDraft] = Field(min_length=1)


class Critique(BaseModel):
    critique: str = ""
    nodes: list[NodeDraft] = Field(min_length=1)


class Choice(BaseModel):
    reason: str = ""
    better: Literal["A", "B"]

    @field_validator("better", mode="before")
    @classmethod
    def _letter(cls, value: Any) -> Any:
        return value.strip().strip("\"'.").upper() if isinstance(value, str) else value


class QADraft(BaseModel):
    query: str = Field(min_length=1)
    answer_format: str
    reference: str = Field(min_length=1)
    choices: list[str] = Field(default_factory=list)
    entry_point: str = ""
    tests: str = ""

    @field_validator("reference", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # Models often write numeric references as JSON numbers.
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )

    @field_validator("choices", mode="before")
    @classmethod
    def _choices(cls, value: Any) -> Any:
        return [] if value is None else value


class QABatch(BaseModel):
    items: list[QADraft] = Field(min_length=1)


class Verdict(BaseModel):
    index: int = Field(ge=0)
    answerable: bool
    reason: str = ""


class Verdicts(BaseModel):
    verdicts: list[Verdict]
