"""A store written by an older trouter, whose tables lack columns the code now declares: opened
to write, it gets them (old rows read their defaults); opened to read, it is left as it is and
read as if it had them."""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import Column, Engine, MetaData, Table, create_engine, inspect, select, text

from factories import opened_meanwhile
from trouter.store import Base, LLMCall, Store

CALLS = LLMCall.__table__
assert isinstance(CALLS, Table)


def older_store(url: str, table: str = "llm_calls", column: str = "purpose") -> None:
    """A store as a trouter from before `table` had `column`: one row written, then the column
    taken away (as if it had never been there)."""
    store = Store(url)
    with store.session() as session:
        session.add(LLMCall(run="r", key="k1", model="small", status="ok", purpose="label"))
        session.commit()
    with store.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    store.close()


def columns_of(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_a_store_opened_to_write_gets_the_column_it_lacked_and_old_rows_read_its_default(
    tmp_path,
):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    older_store(url)
    assert "purpose" not in columns_of(url, "llm_calls")
    store = Store(url)
    assert "purpose" in columns_of(url, "llm_calls")
    with store.session() as session:
        old = session.scalars(select(LLMCall)).one()
        assert (old.key, old.purpose) == ("k1", "")  # the row from before reads the default
        session.add(LLMCall(run="r", key="k2", model="small", status="ok", purpose="judge"))
        session.commit()
        assert session.scalars(select(LLMCall.purpose).order_by(LLMCall.id)).all() == [
            "",
            "judge",
        ]
    assert store.missing_columns(CALLS) == frozenset()
    store.close()


def _keys_only(engine: Engine) -> None:
    """Every table of the store as its primary key alone, with one row: the oldest layout a
    column could be added to."""
    old = MetaData()
    for table in Base.metadata.sorted_tables:
        keys = [Column(c.name, c.type, primary_key=True) for c in table.primary_key.columns]
        Table(table.name, old, *keys)
    old.create_all(engine)
    with engine.begin() as conn:
        for table in old.sorted_tables:
            conn.execute(table.insert(), [{c.name: _key(c) for c in table.columns}])


def _key(column: Column) -> int | str:
    """The old row's value of a key column."""
    return 1 if column.type.python_type is int else "k"


def test_every_column_the_code_declares_can_be_added_to_a_store_that_lacks_it(tmp_path):
    # Whatever column a later version adds, an old store must open: this fails for a column
    # that is NOT NULL with neither a default nor a server default, or whose type cannot be
    # added by ALTER TABLE.
    url = f"sqlite:///{tmp_path / 'keys.sqlite'}"
    engine = create_engine(url)
    _keys_only(engine)
    engine.dispose()
    store = Store(url)
    inspector = inspect(store.engine)
    with store.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.c.keys())
            have = {ix["name"] for ix in inspector.get_indexes(table.name)}
            assert {ix.name for ix in table.indexes} <= have, table.name
            old = [c == _key(c) for c in table.primary_key]
            row = conn.execute(select(table).where(*old)).mappings().one()
            for column in table.columns:
                if column.primary_key:
                    continue
                default = column.default
                expected = getattr(default, "arg", None) if default is not None else None
                expected = None if callable(expected) else expected
                assert row[column.name] == expected, (table.name, column.name)
    store.close()


def test_processes_opening_one_old_store_together_all_open_it(tmp_path):
    # Two writers open an old store at once: the other one adds the column between this one's
    # look at the table and its own ALTER TABLE, which then finds the column there.
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    older_store(url)
    with opened_meanwhile(url, "ALTER TABLE") as others:
        store = Store(url)
    assert len(others) == 1
    assert "purpose" in columns_of(url, "llm_calls")
    store.close()
    others[0].close()


def open_at_once(url: str, writers: int) -> list[Exception]:
    """Open the store to write from `writers` threads released together; what they raised."""
    failures: list[Exception] = []
    start = threading.Barrier(writers)

    def open_it() -> None:
        start.wait()
        try:
            Store(url).close()
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_several_writers_opening_one_old_store_at_once_all_open_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    older_store(url)
    assert open_at_once(url, 6) == []
    assert "purpose" in columns_of(url, "llm_calls")


def test_a_reader_of_an_old_store_adds_nothing_and_reads_the_missing_column_as_its_default(
    tmp_path,
):
    path = tmp_path / "old.sqlite"
    url = f"sqlite:///{path}"
    older_store(url)
    before = path.read_bytes()
    store = Store(url, must_exist=True)
    assert store.missing_columns(CALLS) == {"purpose"}
    with store.engine.connect() as conn:
        row = conn.execute(select(*store.columns(CALLS, ["key", "purpose"]))).one()
    assert tuple(row) == ("k1", "")
    store.close()
    assert path.read_bytes() == before
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        names = {r[1] for r in conn.execute("PRAGMA table_info(llm_calls)")}
    assert "purpose" not in names


POSTGRES_URL = os.environ.get("TROUTER_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A URL of the test Postgres whose tables go to a schema of their own, dropped after."""
    if not POSTGRES_URL:
        pytest.skip("set TROUTER_TEST_POSTGRES_URL=postgresql+psycopg://... to run")
    schema = f"trouter_upgrade_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    joiner = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{joiner}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_an_old_store_on_postgres_is_upgraded_by_writers_and_read_as_it_is_by_readers(
    postgres_schema,
):
    url = postgres_schema
    older_store(url)
    reader = Store(url, must_exist=True)
    assert reader.missing_columns(CALLS) == {"purpose"}
    with reader.engine.connect() as conn:
        assert tuple(conn.execute(select(*reader.columns(CALLS, ["key", "purpose"]))).one()) == (
            "k1",
            "",
        )
    reader.close()
    assert "purpose" not in columns_of(url, "llm_calls")
    assert open_at_once(url, 4) == []
    store = Store(url)
    with store.session() as session:
        assert session.scalars(select(LLMCall.purpose)).all() == [""]
    store.close()


def test_the_oldest_layout_on_postgres_takes_every_column(postgres_schema):
    engine = create_engine(postgres_schema)
    _keys_only(engine)
    engine.dispose()
    Store(postgres_schema).close()
    for table in Base.metadata.sorted_tables:
        assert columns_of(postgres_schema, table.name) == set(table.c.keys())
