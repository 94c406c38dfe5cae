"""docs/options.md is the option families written out: regenerate it when an option changes
(``python -m novita_notebook.options.docs > docs/options.md``)."""

from __future__ import annotations

from pathlib import Path

from novita_notebook.options import FAMILIES
from novita_notebook.options.docs import options_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "options.md"


def test_the_options_table_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == options_markdown()


def test_every_option_has_a_row():
    text = DOC.read_text(encoding="utf-8")
    for family in FAMILIES:
        assert family.title in text
        for option in family:
            assert f"`{option.name}`" in text, option.name
