"""The field names shipped in the package (doctor/known_fields.py) equal those of the contract
fixtures, so the two never drift. Run this file as a script to rewrite known_fields.py.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from novita_notebook.doctor import fields, known_fields

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "contract" / "fixtures"
MODULE = ROOT / "src" / "novita_notebook" / "doctor" / "known_fields.py"
# The endpoints the doctor reads: each must have a fixture, or its fields go unchecked.
READ_BY_DOCTOR = {
    "GET /clusters", "GET /products", "GET /gpu/instances", "GET /gpu/instance",
    "GET /templates", "GET /repository/auths", "GET /networkstorages/list",
}  # fmt: skip


def from_fixtures() -> dict[str, frozenset[str]]:
    loaded = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(FIXTURES.glob("*.json"))]
    return fields.known_from_fixtures(loaded)


def render(known: dict[str, frozenset[str]]) -> str:
    """known_fields.py's text for ``known`` (ruff-formatted already)."""
    out = [
        '"""The response field names the contract fixtures (tests/contract/fixtures/*.json) know, per',
        "endpoint, shipped so an installed doctor has them. Written by tests/doctor/test_known_fields.py",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "",
        "def _fields(text: str) -> frozenset[str]:",
        "    return frozenset(text.split())",
        "",
        "",
        '# Paths as doctor.fields.field_paths writes them; "x.*" means anything below x is known.',
        "KNOWN_FIELDS: dict[str, frozenset[str]] = {",
    ]
    for endpoint in sorted(known):
        wrapped = textwrap.wrap(" ".join(sorted(known[endpoint])), 88, break_on_hyphens=False)
        out += [f'    "{endpoint}": _fields(', '        """']
        out += [f"        {line}" for line in wrapped]
        out += ['        """', "    ),"]
    return "\n".join([*out, "}", ""])


def test_packaged_field_names_equal_the_fixtures():
    expected = from_fixtures()
    assert expected, f"no contract fixtures found in {FIXTURES}"
    assert expected == known_fields.KNOWN_FIELDS, (
        "doctor/known_fields.py drifted from tests/contract/fixtures: "
        "run `python tests/doctor/test_known_fields.py` to rewrite it"
    )


def test_every_endpoint_the_doctor_reads_has_fixtures():
    assert set(from_fixtures()) >= READ_BY_DOCTOR


if __name__ == "__main__":
    MODULE.write_text(render(from_fixtures()), encoding="utf-8")
    sys.stdout.write(f"wrote {MODULE}\n")
