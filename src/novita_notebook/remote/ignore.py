"""Which files a push or a pull leaves out: patterns in ``.gitignore`` syntax (matched by
pathspec, whose GitIgnoreSpec follows git's own rules: negation, directory-only patterns,
anchoring, ``**``), plus a default that skips version control, virtual environments and
caches. A directory holding ``pyvenv.cfg`` or ``conda-meta`` is an environment whatever its
name. Paths are relative to the folder pushed or pulled, with ``/`` separators.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import ValidationError

__all__ = ["DEFAULT_IGNORE", "IgnoreRules", "PARTIAL_SUFFIX"]

#: Left out unless ``default_ignore=False``: version control, environments, caches.
DEFAULT_IGNORE = (
    ".git/", ".hg/", ".svn/",
    ".venv/", "venv/", ".conda/", "node_modules/", ".tox/", ".nox/",
    "__pycache__/", "*.py[cod]", ".ipynb_checkpoints/", ".pytest_cache/", ".mypy_cache/",
    ".ruff_cache/", ".cache/", ".DS_Store",
)  # fmt: skip
#: A file being transferred is written next to its target under this suffix, then renamed.
PARTIAL_SUFFIX = ".novita-part"
#: Entries that make the directory holding them a Python or conda environment.
ENVIRONMENT_MARKERS = frozenset({"pyvenv.cfg", "conda-meta"})


def _lines(ignore: Any) -> list[str]:
    if ignore is None:
        return []
    if isinstance(ignore, str):
        return ignore.splitlines()
    if isinstance(ignore, Iterable):
        lines = list(ignore)
        if all(isinstance(line, str) for line in lines):
            return lines
    raise ValidationError(
        "ignore must be gitignore lines: a string (one pattern a line) or a list of strings",
        field="ignore",
    )


class IgnoreRules:
    """``ignored(path, is_dir)``: whether a push or pull leaves the path out."""

    def __init__(self, ignore: Any = None, *, default_ignore: bool = True) -> None:
        import pathspec

        self.patterns = [*(DEFAULT_IGNORE if default_ignore else ()), *_lines(ignore)]
        self.skip_environments = default_ignore
        self._spec = pathspec.GitIgnoreSpec.from_lines(self.patterns)

    def ignored(self, path: str, is_dir: bool) -> bool:
        name = path.rsplit("/", 1)[-1]
        if name.endswith(PARTIAL_SUFFIX):
            return True
        return self._spec.match_file(path + "/" if is_dir else path)

    def environment(self, entries: Iterable[str]) -> bool:
        """Whether a directory with these entries is an environment to leave out."""
        return self.skip_environments and not ENVIRONMENT_MARKERS.isdisjoint(entries)
