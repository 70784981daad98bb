"""`trouter routers`: each router's note is its docstring's whole first paragraph."""

from __future__ import annotations

from trouter.cli import run
from trouter.cli.info import doc_summary
from trouter.routers.registry import router_class


def test_the_note_is_the_first_paragraph_not_its_first_source_line():
    note = doc_summary(router_class("oracle").__doc__)
    assert note.startswith("Knows the true score and cost")
    assert note.endswith("to draw the best curve any router could reach.")
    assert doc_summary(router_class("random").__doc__).endswith("seeded by the query text.")
    assert doc_summary(None) == ""


def test_routers_lists_every_router_with_its_note(capsys):
    assert run(["routers"]) == 0
    # A long note wraps inside its cell, on rows whose other cells are empty: without the
    # borders, the note reads as one run of words.
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "OracleRouter Knows the true score" in out
    assert "For evaluation only: fit it on the very set you evaluate" in out
    assert "could reach." in out
