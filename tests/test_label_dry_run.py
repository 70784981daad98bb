"""`trouter label --dry-run` estimates the run `trouter label` would make with the same
arguments: the calls it would make (stored observations kept, answers and verdicts the cache
holds at $0, the judge's calls included) and what they cost, typically and at most. Checked
against the real run's requests and spend on a local fake server, for a fresh run and for a
rerun with another judge (which pays the new judge only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trouter.cli import run
from trouter.label.testing import (
    LabelAnswerer,
    arithmetic_items,
    label_args,
    summary_items,
    write_pool,
)
from trouter.synth.items import ItemsFile, SynthItem
from trouter.testing import FakeOpenAI

MODELS = ("cheap", "dear")
JUDGES = {"strict": "Score: 2/10", "lenient": "Score: 9/10"}
N_NUMERIC, N_FREE = 12, 4
RUN = "label:items"


def make_items() -> list[SynthItem]:
    return arithmetic_items(N_NUMERIC) + summary_items(N_FREE)


@pytest.fixture
def setup(tmp_path: Path):
    with FakeOpenAI(LabelAnswerer(JUDGES), models=(*MODELS, *JUDGES)) as server:
        ItemsFile(tmp_path / "items.jsonl").append(make_items())
        # Prices high enough for every figure to show in the printed 4 decimals.
        prices = {"cheap": (100.0, 200.0), "dear": (1000.0, 3000.0)}
        write_pool(tmp_path / "pool.yaml", server.url, prices)
        write_pool(tmp_path / "judges.yaml", server.url, dict.fromkeys(JUDGES, (500.0, 1500.0)))
        yield server, tmp_path


def table_row(out: str, first: str) -> list[str]:
    """The cells of the printed table's row whose first cell is `first`."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[1] == first:
            return cells[1:-1]
    raise AssertionError(f"no row {first!r} in:\n{out}")


def dry_run(tmp: Path, judge: str, capsys) -> tuple[int, float, float]:
    """(calls, typical $, at most $) of the total row `trouter label --dry-run` prints."""
    assert run(label_args(tmp, "--dry-run", judge=judge)) == 0, capsys.readouterr().err
    total = table_row(capsys.readouterr().out, "total")
    return int(total[1].replace(",", "")), float(total[-2]), float(total[-1])


def spent(tmp: Path) -> float:
    from trouter.llm.cache import CallLog
    from trouter.store import Store, url_for

    store = Store(url_for(tmp / "out" / "trouter.sqlite"))
    try:
        return CallLog(store, RUN).spent()
    finally:
        store.close()


def test_the_dry_run_of_a_fresh_run_plans_its_calls_judge_included_and_bounds_its_spend(
    setup, capsys
):
    server, tmp = setup
    calls, typical, at_most = dry_run(tmp, "strict", capsys)
    assert server.completions == []  # a dry run calls nobody
    assert not (tmp / "out" / "trouter.sqlite").exists()  # and writes nothing

    assert run(label_args(tmp, judge="strict")) == 0, capsys.readouterr().err
    pool_calls = (N_NUMERIC + N_FREE) * len(MODELS)
    judge_calls = N_FREE * len(MODELS)
    assert calls == len(server.completions) == pool_calls + judge_calls
    paid = spent(tmp)
    assert 0 < paid <= at_most  # the worst case bounds the real spend
    assert typical <= at_most


def test_the_dry_run_of_a_rerun_with_another_judge_prices_only_the_new_judges_calls(setup, capsys):
    server, tmp = setup
    assert run(label_args(tmp, judge="strict")) == 0, capsys.readouterr().err
    before, paid_before = len(server.completions), spent(tmp)
    capsys.readouterr()

    assert run(label_args(tmp, "--dry-run", judge="lenient")) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    for model in MODELS:  # every pool answer is stored (or cached): no pool call planned
        assert table_row(out, model)[1:] == ["0", "0.0000", "0.0000"], out
    total = table_row(out, "total")
    calls, typical, at_most = int(total[1]), float(total[-2]), float(total[-1])
    assert len(server.completions) == before

    assert run(label_args(tmp, judge="lenient")) == 0, capsys.readouterr().err
    asked = server.completions[before:]
    assert {r.model for r in asked} == {"lenient"}
    assert calls == len(asked) == N_FREE * len(MODELS)
    paid = spent(tmp) - paid_before
    # The judge's prompts are known exactly (the answers are in the cache); each verdict is
    # priced at a typical 80 tokens where this judge writes 3, the prompts from generous token
    # counts: close above the real spend.
    assert 0 < paid <= typical <= at_most
    assert typical <= 5 * paid

    # The same judge again: nothing to do, nothing to pay.
    assert dry_run(tmp, "lenient", capsys) == (0, 0.0, 0.0)


def test_the_dry_run_warns_when_its_estimate_is_over_what_the_budget_has_left(setup, capsys):
    _, tmp = setup
    _, typical, _ = dry_run(tmp, "strict", capsys)
    over = f"{typical / 2:.4f}"
    assert run(label_args(tmp, "--dry-run", "--budget", over, judge="strict")) == 0
    printed = capsys.readouterr()
    err = " ".join(printed.err.split())  # the console wraps long lines
    assert f"warning: the estimate (${typical:.4f}) is above what the budget has left" in err
    assert f"budget cap ${float(over):.2f} for this run (spent before: $0.0000)" in " ".join(
        printed.out.split()
    )
    assert run(label_args(tmp, "--dry-run", "--budget", f"{2 * typical}", judge="strict")) == 0
    assert "above what the budget has left" not in capsys.readouterr().err

    # A rerun's budget counts what the run already spent, as the run's own budget guard does.
    assert run(label_args(tmp, judge="strict")) == 0, capsys.readouterr().err
    paid = spent(tmp)
    capsys.readouterr()
    _, regrade, _ = dry_run(tmp, "lenient", capsys)
    budget = f"{paid + regrade / 2:.6f}"
    assert run(label_args(tmp, "--dry-run", "--budget", budget, judge="lenient")) == 0
    err = " ".join(capsys.readouterr().err.split())
    left = float(budget) - paid
    assert f"the estimate (${regrade:.4f}) is above what the budget has left (${left:.4f})" in err


def test_the_dry_run_finds_the_store_whatever_its_sqlite_url_says(setup, capsys):
    _, tmp = setup
    db = f"sqlite:///{tmp / 'elsewhere.sqlite'}?timeout=5"  # options after the file name
    assert run(label_args(tmp, "--db", db, judge="strict")) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert run(label_args(tmp, "--dry-run", "--db", db, judge="strict")) == 0
    total = table_row(capsys.readouterr().out, "total")
    assert total[1:] == ["0", "0.0000", "0.0000"]  # everything stored: nothing to pay


def test_the_dry_run_reads_an_older_store_and_writes_nothing_to_it(setup, capsys):
    import sqlite3

    _, tmp = setup
    assert run(label_args(tmp, judge="strict")) == 0, capsys.readouterr().err
    capsys.readouterr()
    db = tmp / "out" / "trouter.sqlite"
    with sqlite3.connect(db) as conn:  # as a trouter from before the judge_call column left it
        conn.execute("ALTER TABLE label_observations DROP COLUMN judge_call")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = db.read_bytes()
    assert run(label_args(tmp, "--dry-run", judge="strict")) == 0, capsys.readouterr().err
    total = table_row(capsys.readouterr().out, "total")
    assert total[1:] == ["0", "0.0000", "0.0000"]  # everything stored: nothing to pay
    with sqlite3.connect(db) as conn:  # a dry run calls nothing and writes nothing
        columns = {row[1] for row in conn.execute("PRAGMA table_info(label_observations)")}
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert "judge_call" not in columns and db.read_bytes() == before
