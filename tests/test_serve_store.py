"""The gateway's store: opened by several processes at once, opened when written by an older
trouter, and known by one identity whatever reaches it."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from factories import opened_meanwhile
from trouter.cli import run
from trouter.errors import ConfigError, DataError
from trouter.serve.feedback import feedback_dataset
from trouter.store import Base, DecisionLog, Store


def test_replicas_creating_one_store_at_once_both_open_it_with_one_identity(tmp_path):
    # Two gateways start together on a fresh database: the other one creates the tables
    # between this one's check for them and its own CREATE TABLE. Both must open the store.
    url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    with opened_meanwhile(url, "CREATE TABLE") as others:
        store = Store(url)
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


def older_store(path: Path, newer: tuple[str, ...] = ("store_info",)) -> None:
    """A gateway's store as trouter wrote it before the `newer` tables existed: one answered
    request."""
    store = Store(f"sqlite:///{path}")
    with store.session() as session:
        session.add(DecisionLog(request_id="r1", requested="trouter", final_model="small"))
        session.commit()
    with store.engine.begin() as conn:
        for table in newer:
            conn.execute(text(f"DROP TABLE {table}"))
    store.close()


def tables(path: Path) -> set[str]:
    """The tables of a SQLite store, its write-ahead log included."""
    query = "SELECT name FROM sqlite_master WHERE type='table'"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return {r[0] for r in conn.execute(query)}
    except sqlite3.OperationalError:  # not root, in a read-only directory: there is no WAL
        with sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True) as conn:
            return {r[0] for r in conn.execute(query)}


@pytest.fixture
def read_only_copy():
    """A read-only copy (file 0444 in a 0555 directory) of an older store; the directory is
    made where any user can reach it, for the test that reads it as another user."""
    top = Path(tempfile.mkdtemp(prefix="trouter-ro-"))
    top.chmod(0o755)
    older_store(top / "made.sqlite")
    folder = top / "copy"
    folder.mkdir()
    path = folder / "old.sqlite"
    shutil.copy(top / "made.sqlite", path)
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        yield path
    finally:
        folder.chmod(0o755)
        shutil.rmtree(top)


def test_logs_read_a_read_only_copy_of_an_older_store_and_write_nothing(read_only_copy, capsys):
    before = read_only_copy.read_bytes()
    assert run(["logs", "--db", str(read_only_copy)]) == 0
    assert "1 requests" in capsys.readouterr().out
    # Reading made no identity (root ignores the mode bits, so this is checked, not assumed).
    assert read_only_copy.read_bytes() == before
    assert "store_info" not in tables(read_only_copy) and "decisions" in tables(read_only_copy)


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="runs trouter logs as the user nobody, which needs root and setpriv",
)
def test_logs_read_a_read_only_copy_of_an_older_store_as_a_user_who_cannot_write(
    read_only_copy,
):
    # As root the test above cannot fail to write; here SQLite itself is refused every write,
    # including the WAL index a read of a WAL-mode file would create beside it.
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = [*as_nobody, sys.executable, "-c", "import trouter.cli"]
    if subprocess.run(probe, capture_output=True, timeout=120).returncode != 0:
        pytest.skip("the user nobody cannot run this checkout's python (e.g. under /root)")
    logs = [sys.executable, "-c", "from trouter.cli import main; main()", "logs", "--db"]
    done = subprocess.run(
        [*as_nobody, *logs, str(read_only_copy)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=read_only_copy.parent,
        env={**os.environ, "HOME": str(read_only_copy.parent)},
    )
    assert done.returncode == 0, done.stderr
    assert "1 requests" in done.stdout


def test_adapting_from_an_older_store_makes_its_identity_when_it_needs_it(tmp_path):
    path = tmp_path / "old.sqlite"
    older_store(path)
    store = Store(f"sqlite:///{path}", must_exist=True)
    assert "store_info" not in tables(path)  # opening it to read wrote nothing
    identity = store.identity()  # what trouter adapt --db marks its reads with
    assert "store_info" in tables(path) and store.identity() == identity
    store.close()


def test_a_store_read_before_it_had_a_feedback_table_reads_as_having_no_feedback(tmp_path, capsys):
    path = tmp_path / "older.sqlite"
    older_store(path, newer=("store_info", "feedback"))
    assert run(["logs", "--db", str(path)]) == 0
    assert "1 requests" in capsys.readouterr().out
    store = Store(f"sqlite:///{path}", must_exist=True)
    with pytest.raises(DataError, match="no new feedback"):
        feedback_dataset(store, ("small",))
    store.close()
    assert "feedback" not in tables(path)
