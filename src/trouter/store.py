"""The store: one SQLAlchemy database for everything trouter writes as it runs.

SQLite (one file, WAL mode) by default; any SQLAlchemy URL (e.g. `postgresql+psycopg://...`)
selects another database, so several gateway replicas can share one Postgres.

Tables:
- `llm_cache`: every successful LLM response, keyed by a hash of the full request; a rerun or a
  resumed run reads from here instead of paying again.
- `llm_calls`: one row per LLM call attempt outcome (usage, $ cost, latency, cache hit, error).
- `decisions`: the gateway's per-request decision and outcome log.
- `synth_items`, `label_observations`, `label_judges`: what a cold start synthesised, how each
  pool model answered and was graded, and which judge graded the run's answers.
- `feedback`: scores clients report for answered requests (`POST /v1/feedback`), which
  `trouter adapt --db` turns into outcomes a TRouter adapts to.
- `store_info`: the store's own identity (`Store.identity`).

Other modules add tables by subclassing `Base`; `Store.create_all` creates whatever is defined.

A store written by an earlier trouter is upgraded when opened to write: the columns a table
declares and the database's table lacks are added (`store_schema.upgrade_columns`), never
dropped, renamed or retyped, so the paid answers it holds stay readable by the new code. A new
column must therefore be nullable or have a default (a scalar `default`, or a
`server_default`): old rows read it as that default. A store opened to read is not upgraded;
`Store.columns` reads its missing columns as their defaults.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Float,
    Integer,
    Select,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    inspect,
    literal,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from trouter.errors import ConfigError
from trouter.paths import home
from trouter.store_schema import lost_race, missing_columns, scalar_default, upgrade_columns


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class LLMCacheEntry(Base):
    __tablename__ = "llm_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LLMCall(Base):
    __tablename__ = "llm_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run: Mapped[str] = mapped_column(String(100), default="", index=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(200), index=True)
    purpose: Mapped[str] = mapped_column(String(100), default="")
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20))  # ok | error
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DecisionLog(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    requested: Mapped[str] = mapped_column(String(200))  # the request's `model` field
    tradeoff: Mapped[str] = mapped_column(String(100), default="")
    lam: Mapped[float | None] = mapped_column(Float, nullable=True)
    chosen_model: Mapped[str] = mapped_column(String(200), default="")
    final_model: Mapped[str] = mapped_column(String(200), default="")  # after fallbacks
    fallbacks: Mapped[int] = mapped_column(Integer, default=0)
    chain: Mapped[list[Any]] = mapped_column(JSON, default=list)  # the decision's full chain
    # failed attempts before the answer: [{"model", "kind", "status"}]
    attempts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # every pool model's predicted {"model": [quality, cost]}: for learning from traffic
    estimates: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    client: Mapped[str] = mapped_column(String(32), default="")  # key fingerprint, never a key
    predicted_quality: Mapped[float | None] = mapped_column(Float, nullable=True)
    predicted_cost: Mapped[float | None] = mapped_column(Float, nullable=True)
    top_task: Mapped[str] = mapped_column(String(300), default="")
    query: Mapped[str] = mapped_column(Text, default="")
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    # ok | error | client_closed | shutdown (a forced stop cut the stream)
    status: Mapped[str] = mapped_column(String(20), default="ok")
    http_status: Mapped[int] = mapped_column(Integer, default=200)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    overhead_ms: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str] = mapped_column(Text, default="")


def default_url() -> str:
    return f"sqlite:///{home() / 'trouter.sqlite'}"


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def url_for(db: str | Path) -> str:
    """`--db` as given: a SQLAlchemy URL, or a file path made a SQLite URL."""
    return db if isinstance(db, str) and "://" in db else sqlite_url(db)


def shown_url(url: str) -> str:
    """The URL with its password hidden, for messages and banners."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


class Store:
    """An engine plus a session factory; `Store(url)` creates missing tables and columns.

    >>> store = Store("sqlite://")  # in memory
    >>> with store.session() as s:
    ...     _ = s.query(LLMCacheEntry).count()
    """

    def __init__(self, url: str | None = None, *, must_exist: bool = False) -> None:
        """`must_exist`: open a store to read what a gateway or a run wrote (`trouter logs`,
        `trouter adapt --db`). A SQLite file that is not there is an error, not a new empty
        store (a typo must not look empty), and opening writes nothing, so a read-only copy
        can be read: missing tables are not created (`has_table` tells readers), and the
        identity is made only when asked for."""
        self.url = url or default_url()
        self._missing: dict[str, frozenset[str]] = {}  # per table read, the columns it lacks
        self.engine, self._tables = self._open(must_exist)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _open(self, reading: bool) -> tuple[Engine, set[str] | None]:
        """The engine, and when `reading` the tables there are (else all are created)."""
        path = sqlite_file(self.url) if reading else None
        if path is not None and not path.is_file():
            raise ConfigError(
                f"no store at {path}; give --db the file the gateway or run wrote "
                "(`trouter serve --db ...`), or its database URL"
            )
        engine = make_engine(self.url)
        try:  # the first connection: a bad file or server shows up here
            if not reading:
                self._create_all(engine)
                return engine, None
            try:
                return engine, set(inspect(engine).get_table_names())
            except OperationalError:
                # A WAL-mode SQLite file in a directory this user cannot write cannot be read
                # the usual way (SQLite would create its WAL index beside it). With no WAL file
                # there, nothing is being written to it, so it is read as the immutable file.
                if path is None or path.with_name(path.name + "-wal").exists():
                    raise
                engine.dispose()
                file = quote(str(path.resolve()))
                engine = make_engine(f"sqlite:///file:{file}?mode=ro&immutable=1&uri=true")
                return engine, set(inspect(engine).get_table_names())
        except SQLAlchemyError as exc:
            engine.dispose()
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise ConfigError(
                f"cannot open the store at {shown_url(self.url)}: {reason}; check --db (a "
                "SQLite file trouter wrote, or a reachable database URL)"
            ) from None

    def has_table(self, name: str) -> bool:
        """Whether the store has table `name` (a store opened to read, written by an older
        trouter, may lack the newer ones; any other store has them all)."""
        return self._tables is None or name in self._tables

    def create_all(self) -> None:
        """Create the tables that are missing, add the columns missing from the others (see
        `upgrade_columns`), and make the identity."""
        self._create_all(self.engine)
        self._tables = None
        self._missing.clear()

    def missing_columns(self, table: Table) -> frozenset[str]:
        """The columns `table` declares that the store's table lacks: none in a store opened to
        write (they were added), maybe some in one opened to read that an older trouter
        wrote. A table the store lacks altogether lacks none (`has_table` tells that)."""
        if table.name not in self._missing:
            self._missing[table.name] = missing_columns(self.engine, table)
        return self._missing[table.name]

    def columns(self, table: Table, names: list[str] | None = None) -> list[ColumnElement[Any]]:
        """`table`'s columns `names` (all by default) to select, each column the store lacks
        read as its default (`None` without one), under its name: what a reader selects so
        a store an older trouter wrote reads like a new one."""
        missing = self.missing_columns(table)
        out: list[ColumnElement[Any]] = []
        for name in names if names is not None else [column.name for column in table.columns]:
            column = table.c[name]
            if name in missing:
                out.append(literal(scalar_default(column), column.type).label(name))
            else:
                out.append(column)
        return out

    @staticmethod
    def _create_all(engine: Engine, tables: list[Table] | None = None) -> None:
        # Processes opening a fresh database together (replicas starting at once) race to
        # create its tables: a CREATE that finds its table or index just made by another is no
        # failure, and the next pass skips what is there. Each lost race means another made
        # progress, so the passes are bounded by the number of things to create.
        passes = 2 * len(Base.metadata.tables) + 1
        for n in range(passes):
            try:
                Base.metadata.create_all(engine, tables=tables)
                break
            except SQLAlchemyError as exc:
                if n == passes - 1 or not lost_race(exc):
                    raise
        if tables is None:
            upgrade_columns(engine, Base.metadata)  # a store an older trouter wrote
            _identity(engine)  # made with the store, so copies of it share it

    def identity(self) -> str:
        """A random id made once per store. It travels with a copied SQLite file and differs
        between stores, so a note of what was read from a store (the feedback ids `trouter
        adapt --db` used) applies to that store only, whatever URL reaches it.

        A store opened to read that an older trouter wrote has none yet: it is made now (the
        first write to that store), so marks made from the store's feedback can name it."""
        if not self.has_table(StoreInfo.__tablename__):
            self._create_all(self.engine, [Base.metadata.tables[StoreInfo.__tablename__]])
            assert self._tables is not None
            self._tables.add(StoreInfo.__tablename__)
        return _identity(self.engine)

    def session(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()


def _identity(engine: Engine) -> str:
    """The store's identity, made if it has none yet (see `Store.identity`)."""
    sessions = sessionmaker(engine)
    with sessions() as session:
        if (row := session.get(StoreInfo, "id")) is not None:
            return row.value
        session.add(StoreInfo(key="id", value=uuid.uuid4().hex))
        try:
            session.commit()
        except IntegrityError:  # another process made it first
            session.rollback()
    with sessions() as session:
        row = session.get(StoreInfo, "id")
        assert row is not None
        return row.value


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names, whatever its driver or options (`sqlite+pysqlite:///x.db`,
    `sqlite:///x.db?timeout=5`); None for another database, memory, or a `uri=true` URL (SQLite
    reads that one itself)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if str(parsed.query.get("uri", "")).lower() in ("true", "1"):
        return None
    return Path(parsed.database)


def _postgres_hint(url: str) -> str:
    """What to write instead, for a Postgres URL SQLAlchemy cannot load: `postgres://` (as
    hosts print it) is no SQLAlchemy dialect name, and the driver comes with an extra."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return ""
    if not parsed.drivername.startswith("postgres"):
        return ""
    fixed = shown_url(parsed.set(drivername="postgresql+psycopg").render_as_string(False))
    return f"; write it {fixed} (with the driver: pip install 'trouter[postgres]')"


def make_engine(url: str) -> Engine:
    if (path := sqlite_file(url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, future=True)
    except Exception as exc:  # a malformed URL or a missing driver
        raise ConfigError(
            f"cannot open the store at {shown_url(url)!r}: {exc}{_postgres_hint(url)}"
        ) from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer; crash-safe
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


class SynthItemRow(Base):
    """A synthesised item (`trouter.synth.items.SynthItem` as JSON), keyed by run and item id."""

    __tablename__ = "synth_items"

    run: Mapped[str] = mapped_column(String(100), primary_key=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    path: Mapped[str] = mapped_column(String(500), index=True)
    answer_format: Mapped[str] = mapped_column(String(20))
    query: Mapped[str] = mapped_column(Text)
    item: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LabelObservation(Base):
    """One pool model's answer to one item and its grade (`trouter label`), keyed by run, item
    and model so a resumed run can neither duplicate nor lose an observation. `status` is ok,
    call_failed (no answer after retries) or score_failed (an answer that could not be graded);
    `retry` marks rows the next run redoes. `judge_call` is what became of the judge's call for
    the answer (`trouter.label.down`'s answered, cached, failed), "" when no judge was asked or
    the row was written before trouter stored it (its error text then tells a failed call)."""

    __tablename__ = "label_observations"

    run: Mapped[str] = mapped_column(String(100), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    task: Mapped[str] = mapped_column(String(500), default="")
    answer_format: Mapped[str] = mapped_column(String(20), default="")
    status: Mapped[str] = mapped_column(String(20))
    retry: Mapped[bool] = mapped_column(Boolean, default=False)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    response: Mapped[str | None] = mapped_column(Text, nullable=True)
    extracted: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    tokens_in: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_out: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cost: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    request_key: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    judge_call: Mapped[str] = mapped_column(String(20), default="", server_default="")


class LabelJudge(Base):
    """The judge whose verdicts a labelling run's stored observations hold (its `Judge.id`, ""
    for none), written with the first observations it grades."""

    __tablename__ = "label_judges"

    run: Mapped[str] = mapped_column(String(100), primary_key=True)
    judge: Mapped[str] = mapped_column(Text, default="")
    name: Mapped[str] = mapped_column(String(200), default="")


class Feedback(Base):
    """A score in [0, 1] a client reported for the answer to one logged request."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    score: Mapped[float] = mapped_column(Float)
    client: Mapped[str] = mapped_column(String(32), default="")  # key fingerprint, never a key
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )

    @classmethod
    def latest(cls, after: int = 0, since: datetime | None = None) -> Select[int]:
        """The id of each request's latest score (a request scored twice counts once), among
        scores with ids above `after` given at or after `since`."""
        latest = select(func.max(cls.id)).where(cls.id > after)
        if since is not None:
            latest = latest.where(cls.created_at >= since)
        return latest.group_by(cls.request_id)


class StoreInfo(Base):
    """Facts about the store itself: its identity (`Store.identity`)."""

    __tablename__ = "store_info"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
