"""The task profile: a short YAML description of a deployment from which trouter synthesises
cold-start training data (taxonomy, then QA items). See `examples/support-profile.yaml`.

    name: acme-support
    description: Customer-support assistant for Acme Cloud, a SaaS ...
    levels:
      - {name: domain, max_nodes: 6, seeds: [Billing, Account access]}
      - {name: subcategory, max_nodes: 4}
      - {name: difficulty, nodes: [easy, medium, hard]}   # fixed: no LLM calls
    generator: gpt-4o-mini          # a pool model's name (with `pool:`) or an inline ModelSpec
    pool: pool.yaml                 # relative to this file
    items_per_leaf: 10
    languages: [en]
    budget_usd: 5.0
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trouter.errors import ConfigError
from trouter.pool import ModelSpec, Pool

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
KNOWN_FORMATS = ("exact", "numeric", "multiple_choice", "code", "free_text")


class SeedNode(BaseModel):
    """A node given by the user: only a name, or a full node."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    definition: str = ""
    example: str = ""


def _as_nodes(raw: Any) -> Any:
    if isinstance(raw, list):
        return [{"name": x} if isinstance(x, str) else x for x in raw]
    return raw


def _is_branch_tag(part: object) -> bool:
    """A union branch's name in an error location ("str", "function-after[..., ModelSpec]")."""
    return isinstance(part, str) and (part in ("str", "ModelSpec") or part.startswith("function-"))


def _first_error(exc: ValidationError) -> Any:
    """The error to show: for a `str | ModelSpec` field given a mapping, the ModelSpec branch's
    (an unknown key, a missing field), not "Input should be a valid string"."""
    errors = exc.errors()
    for err in errors:
        if not (err["type"] == "string_type" and isinstance(err.get("input"), dict)):
            return err
    return errors[0]


class LevelSpec(BaseModel):
    """One taxonomy level: what it distinguishes, how many children per parent, seeds."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="domain, subcategory, difficulty, preference, ...")
    description: str = Field(default="", description="What tells this level's nodes apart.")
    min_nodes: int = Field(default=0, ge=0, description="Fewest children per parent (default 2).")
    max_nodes: int = Field(default=6, ge=1, description="Most children per parent.")
    seeds: list[SeedNode] | dict[str, list[SeedNode]] = Field(
        default_factory=list,
        description="Nodes that must appear: a list (under every parent) or a mapping from a "
        "parent's path (or name) to its list.",
    )
    nodes: list[SeedNode] | None = Field(
        default=None, description="A fixed node set: used as given under every parent, no LLM."
    )

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_strings(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            return {k: _as_nodes(v) for k, v in raw.items()}
        return _as_nodes(raw)

    @field_validator("nodes", mode="before")
    @classmethod
    def _node_strings(cls, raw: Any) -> Any:
        return _as_nodes(raw)

    @model_validator(mode="after")
    def _check(self) -> LevelSpec:
        if self.nodes is not None:
            if not self.nodes:
                raise ValueError(f"level {self.name!r}: 'nodes' is empty")
            names = [" ".join(n.name.split()).lower() for n in self.nodes]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:  # they would silently collapse into one node
                raise ValueError(f"level {self.name!r}: repeated nodes {', '.join(repeated)}")
            self.min_nodes = self.max_nodes = len(self.nodes)
        if self.min_nodes == 0:
            self.min_nodes = min(2, self.max_nodes)
        if self.min_nodes > self.max_nodes:
            raise ValueError(
                f"level {self.name!r}: min_nodes ({self.min_nodes}) > max_nodes ({self.max_nodes})"
            )
        lists = self.seeds.values() if isinstance(self.seeds, dict) else [self.seeds]
        for seeds in lists:
            if len(seeds) > self.max_nodes:
                raise ValueError(
                    f"level {self.name!r}: {len(seeds)} seeds but max_nodes is {self.max_nodes}"
                )
        return self

    @property
    def fixed(self) -> bool:
        return self.nodes is not None

    def seeds_for(self, parent_path: str | None) -> list[SeedNode]:
        """The seeds under one parent (matched by full path, then by the parent's own name)."""
        if isinstance(self.seeds, list):
            return list(self.seeds)
        if parent_path is None:
            return list(self.seeds.get("", []))
        return list(
            self.seeds.get(parent_path) or self.seeds.get(parent_path.rsplit("/", 1)[-1]) or []
        )


class TaxonomySettings(BaseModel):
    """How the taxonomy builder iterates (the paper's generate -> critique/revise -> A/B)."""

    model_config = ConfigDict(extra="forbid")

    max_rounds: int = Field(default=4, ge=0, description="Critique/revise rounds per node set.")
    stable_rounds: int = Field(default=2, ge=1, description="Stop after this many unchanged.")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=2000, ge=64)
    seed: int = 0


class SynthesisSettings(BaseModel):
    """How QA items are written, checked and deduplicated."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default=5, ge=1, le=50, description="Items asked for per call.")
    answer_formats: list[str] = Field(default_factory=lambda: list(KNOWN_FORMATS))
    answerability_check: bool = True
    dedup_threshold: float = Field(default=0.9, gt=0.0, le=1.0, description="Cosine cut-off.")
    encoder: str = Field(default="minilm", description="Encoder spec for deduplication.")
    max_batch_factor: float = Field(
        default=2.0, ge=1.0, description="At most this times the needed batches per leaf."
    )
    temperature: float = Field(default=0.9, ge=0.0, le=2.0)
    max_tokens: int = Field(default=3000, ge=64)

    @field_validator("answer_formats")
    @classmethod
    def _known_formats(cls, formats: list[str]) -> list[str]:
        unknown = sorted(set(formats) - set(KNOWN_FORMATS))
        if unknown:
            raise ValueError(
                f"unknown answer formats {', '.join(unknown)}; choose from {', '.join(KNOWN_FORMATS)}"
            )
        if not formats:
            raise ValueError("answer_formats cannot be empty")
        return list(dict.fromkeys(formats))


class TaskProfile(BaseModel):
    """A deployment described for cold-start synthesis (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="A short id (letters, digits, . _ -): names runs and files.")
    description: str = Field(min_length=20, description="What the deployment does, for whom.")
    audience: str = Field(default="", description="Who sends the queries.")
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    levels: list[LevelSpec] = Field(min_length=1)
    generator: str | ModelSpec = Field(description="A pool model's name, or an inline ModelSpec.")
    pool: str | None = Field(default=None, description="Pool YAML, relative to the profile.")
    judge: str | ModelSpec | None = Field(
        default=None,
        description="Model that grades free-text answers when the pool is labelled: a pool "
        "model's name or an inline ModelSpec (None: the caller decides, e.g. the generator).",
    )
    items_per_leaf: int = Field(default=10, ge=1)
    budget_usd: float | None = Field(default=None, gt=0.0, description="Hard $ cap on spending.")
    taxonomy: TaxonomySettings = Field(default_factory=TaxonomySettings)
    synthesis: SynthesisSettings = Field(default_factory=SynthesisSettings)

    # Where the profile was read from (pool paths resolve against it); not part of the YAML.
    _base_dir: Path = Path(".")

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        if not _SLUG.match(name):
            raise ValueError(f"{name!r} must be letters, digits, '.', '_' or '-' (no spaces)")
        return name

    @model_validator(mode="after")
    def _check(self) -> TaskProfile:
        names = [lv.name.lower() for lv in self.levels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"levels: repeated level names {', '.join(dupes)}")
        first = self.levels[0]
        if isinstance(first.seeds, dict) and set(first.seeds) - {""}:
            raise ValueError(
                f"levels.0 ({first.name}): the top level has no parent; give its seeds as a list"
            )
        if isinstance(self.generator, str) and self.pool is None:
            raise ValueError(
                f"generator {self.generator!r} names a pool model, but the profile has no "
                "'pool:' file; add one or give the generator inline (name, model, base_url, ...)"
            )
        return self

    # ------------------------------------------------------------------ IO
    @classmethod
    def from_dict(
        cls, raw: Any, source: str = "profile", base_dir: Path | None = None
    ) -> TaskProfile:
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a mapping of profile fields")
        try:
            profile = cls.model_validate(raw)
        except ValidationError as exc:
            err = _first_error(exc)
            where = ".".join(str(p) for p in err["loc"] if not _is_branch_tag(p))
            msg = str(err["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"{source}: {where + ': ' if where else ''}{msg}") from None
        profile._base_dir = base_dir or Path(".")
        return profile

    @classmethod
    def load(cls, path: str | Path) -> TaskProfile:
        """Read and validate a profile YAML (the generator is resolved here too)."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"task profile not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        profile = cls.from_dict(raw, source=str(path), base_dir=path.resolve().parent)
        profile.generator_spec()  # a wrong pool path or model name is a profile error
        return profile

    def save(self, path: str | Path) -> None:
        import yaml

        data = self.model_dump(mode="json", exclude_defaults=True)
        data.setdefault("generator", self.model_dump(mode="json")["generator"])
        Path(path).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")

    # ------------------------------------------------------------------ resolution
    @property
    def pool_path(self) -> Path | None:
        if self.pool is None:
            return None
        p = Path(self.pool).expanduser()
        return p if p.is_absolute() else self._base_dir / p

    def load_pool(self) -> Pool | None:
        return Pool.load(self.pool_path) if self.pool_path is not None else None

    def generator_spec(self) -> ModelSpec:
        """The generator as a `ModelSpec` (looked up in the pool when given by name)."""
        if isinstance(self.generator, ModelSpec):
            return self.generator
        pool = self.load_pool()
        assert pool is not None  # the validator guarantees a pool for a named generator
        if self.generator not in pool:
            raise ConfigError(
                f"profile {self.name!r}: generator {self.generator!r} is not in the pool "
                f"{self.pool_path}; the pool has: {', '.join(pool.names)}"
            )
        return pool[self.generator]

    def judge_spec(self, other: Pool | None = None) -> ModelSpec | None:
        """The judge as a `ModelSpec` (a name is looked up in the profile's pool, then in
        `other`, e.g. the pool being labelled), or None when the profile names none."""
        if self.judge is None or isinstance(self.judge, ModelSpec):
            return self.judge
        pools = [p for p in (self.load_pool(), other) if p is not None]
        for pool in pools:
            if self.judge in pool:
                return pool[self.judge]
        names = sorted({n for pool in pools for n in pool.names})
        raise ConfigError(
            f"profile {self.name!r}: judge {self.judge!r} is not in the pool; "
            f"the pool has: {', '.join(names)}"
        )

    @property
    def level_names(self) -> list[str]:
        return [lv.name for lv in self.levels]

    @property
    def run_id(self) -> str:
        """The run label of this profile's LLM calls; the budget cap spans all of them."""
        return f"profile:{self.name}"
