"""The gateway's store: opened by several processes at once, opened when written by an older
trouter, and known by one identity whatever reaches it."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import Engine, create_engine, event

from trouter.errors import ConfigError
from trouter.store import Base, Store


def test_replicas_creating_one_store_at_once_both_open_it_with_one_identity(tmp_path):
    # Two gateways start together on a fresh database: the other one creates the tables
    # between this one's check for them and its own CREATE TABLE. Both must open the store.
    url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    others: list[Store] = []
    racing = False

    def _the_other_replica_first(_conn, _cursor, statement, *_args) -> None:
        nonlocal racing
        if statement.lstrip().startswith("CREATE TABLE") and not racing:
            racing = True
            others.append(Store(url))

    event.listen(Engine, "before_cursor_execute", _the_other_replica_first)
    try:
        store = Store(url)
    finally:
        event.remove(Engine, "before_cursor_execute", _the_other_replica_first)
    assert len(others) == 1
    assert store.identity() == others[0].identity()


def test_a_store_written_by_an_older_trouter_gets_an_identity_it_keeps(tmp_path):
    path = tmp_path / "old.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    old_tables = [t for name, t in Base.metadata.tables.items() if name != "store_info"]
    Base.metadata.create_all(engine, tables=old_tables)  # before store_info existed
    engine.dispose()
    first = Store(f"sqlite:///{path}", must_exist=True).identity()
    assert Store(f"sqlite:///{path}", must_exist=True).identity() == first
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM store_info").fetchall() == [(first,)]


def test_a_postgres_url_says_how_to_write_it_for_sqlalchemy():
    # postgres:// (as Heroku and many hosts print it) is no SQLAlchemy dialect name.
    with pytest.raises(ConfigError) as error:
        Store("postgres://gateway:secret@127.0.0.1:1/trouter")
    message = str(error.value)
    assert "postgresql+psycopg://gateway:***@127.0.0.1:1/trouter" in message
    assert "pip install 'trouter[postgres]'" in message and "secret" not in message
