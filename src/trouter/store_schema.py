"""The store's schema upgrade: what a store written by an earlier trouter lacks is added when it
is opened to write (`upgrade_columns`), never dropped, renamed or retyped, and what several
processes opening one store race to create is no failure (`lost_race`). `trouter.store` holds
the tables and the rules a new column follows."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy import Engine, MetaData, Table, inspect, literal, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.schema import Column, DefaultClause, ScalarElementColumnDefault

#: What SQLite and Postgres say when a CREATE (or an ADD COLUMN) finds its table, index or
#: column made meanwhile by another process opening the same store.
_RACED = ("already exists", "duplicate")


def upgrade_columns(engine: Engine, metadata: MetaData) -> None:
    """Add to each table of the store the columns (and their indexes) its declaration has and
    the table lacks, as trouter's newer versions declare more than the older ones created.
    Only additions: nothing is dropped, renamed or retyped. Processes opening one old store
    together each try to add what they saw missing; an ADD that finds the column (or index)
    already made by another is no failure."""
    present = set(inspect(engine).get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in present:
            continue
        missing = missing_columns(engine, table)
        for column in table.columns:  # in declaration order, as a new store has them
            if column.name in missing:
                _raced(engine, _add_column_sql(engine, column))
        if missing:
            have = {ix["name"] for ix in inspect(engine).get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in have and any(c.name in missing for c in index.columns):
                    _tolerate_race(partial(index.create, engine, checkfirst=True))


def missing_columns(engine: Engine, table: Table) -> frozenset[str]:
    inspector = inspect(engine)
    if not inspector.has_table(table.name):
        return frozenset()
    have = {column["name"] for column in inspector.get_columns(table.name)}
    return frozenset(column.name for column in table.columns if column.name not in have)


def scalar_default(column: Column[Any]) -> Any:
    """The value a column holds when a row is written without it: its scalar `default` (or
    text `server_default`), else None (a callable default, such as a timestamp, cannot be
    given to rows already written)."""
    if isinstance(default := column.default, ScalarElementColumnDefault):
        return default.arg
    server = column.server_default
    return server.arg if isinstance(server, DefaultClause) and isinstance(server.arg, str) else None


def _add_column_sql(engine: Engine, column: Column[Any]) -> str:
    """`ALTER TABLE ... ADD COLUMN` for `column`, with its default for the rows there are: its
    `server_default`, else its scalar `default`. NOT NULL only with a default (the rows there
    are need a value); a column with neither is added nullable, and old rows hold NULL."""
    dialect = engine.dialect
    quote_ = dialect.identifier_preparer
    sql = (
        f"ALTER TABLE {quote_.format_table(column.table)} ADD COLUMN "
        f"{quote_.format_column(column)} {column.type.compile(dialect=dialect)}"
    )
    server = column.server_default
    if isinstance(server, DefaultClause):
        arg = server.arg
        default = str(
            literal(arg).compile(dialect=dialect, compile_kwargs={"literal_binds": True})
            if isinstance(arg, str)
            else arg.compile(dialect=dialect)  # text("...") or another SQL expression
        )
    elif (scalar := scalar_default(column)) is not None:
        bound = literal(scalar, column.type)
        default = str(bound.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    else:
        return sql
    return f"{sql} DEFAULT {default}" + ("" if column.nullable else " NOT NULL")


def _raced(engine: Engine, sql: str) -> None:
    """Run one DDL statement in its own transaction (a failed one spoils a Postgres
    transaction), taking "already exists" for done."""

    def run() -> None:
        with engine.begin() as conn:
            conn.execute(text(sql))

    _tolerate_race(run)


def _tolerate_race(make: Callable[[], object]) -> None:
    try:
        make()
    except SQLAlchemyError as exc:
        if not lost_race(exc):
            raise


def lost_race(exc: SQLAlchemyError) -> bool:
    """Whether a CREATE or an ADD COLUMN failed only because another process opening the same
    store made that table, index or column meanwhile."""
    reason = str(getattr(exc, "orig", None) or exc).lower()
    return any(word in reason for word in _RACED)
