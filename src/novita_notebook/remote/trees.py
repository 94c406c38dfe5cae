"""The two sides of a transfer as lists of files: this machine's folder (os.scandir) and the
instance's (SFTP readdir, directories read concurrently), each file with its size, mtime and
permissions, ignored paths left out, and the partial files an interrupted transfer left.

A symbolic link to a file counts as that file; a link to a directory is not followed (a loop
or a path outside the folder) and is listed in ``links_skipped``.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ignore import PARTIAL_SUFFIX, IgnoreRules

__all__ = ["Entry", "Tree", "local_tree", "remote_tree", "partial_of", "target_of_partial"]


@dataclass(frozen=True)
class Entry:
    """One file: ``path`` relative to the folder, ``/``-separated."""

    path: str
    size: int
    mtime: int
    mode: int


@dataclass
class Tree:
    files: dict[str, Entry] = field(default_factory=dict)
    dirs: dict[str, int] = field(default_factory=dict)  # relative path -> permissions
    partials: dict[str, int] = field(default_factory=dict)  # target path -> bytes so far
    ignored: int = 0
    links_skipped: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.files.values())


def partial_of(path: str) -> str:
    """``a/b.bin`` -> ``a/.b.bin.novita-part``: where a transfer writes before it renames."""
    head, name = posixpath.split(path)
    return posixpath.join(head, f".{name}{PARTIAL_SUFFIX}")


def target_of_partial(path: str) -> str | None:
    head, name = posixpath.split(path)
    if not (name.startswith(".") and name.endswith(PARTIAL_SUFFIX)):
        return None
    return posixpath.join(head, name[1 : -len(PARTIAL_SUFFIX)])


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def local_tree(root: Path, rules: IgnoreRules) -> Tree:
    """Every file under ``root`` (a directory) that the rules keep."""
    tree = Tree(dirs={"": stat.S_IMODE(root.stat().st_mode)})
    pending = [("", root)]
    while pending:
        prefix, directory = pending.pop()
        with os.scandir(directory) as scan:
            entries = list(scan)
        if prefix and rules.environment(e.name for e in entries):
            tree.ignored += 1
            del tree.dirs[prefix]
            continue
        for item in entries:
            rel = _join(prefix, item.name)
            target = target_of_partial(rel)
            if target is not None:
                tree.partials[target] = item.stat(follow_symlinks=False).st_size
                continue
            is_dir = item.is_dir(follow_symlinks=True)
            if rules.ignored(rel, is_dir):
                tree.ignored += 1
                continue
            if is_dir and item.is_symlink():
                tree.links_skipped.append(rel)
            elif is_dir:
                tree.dirs[rel] = stat.S_IMODE(item.stat().st_mode)
                pending.append((rel, Path(item.path)))
            elif item.is_file(follow_symlinks=True):
                info = item.stat(follow_symlinks=True)
                tree.files[rel] = Entry(rel, info.st_size, int(info.st_mtime),
                                        stat.S_IMODE(info.st_mode))  # fmt: skip
    return tree


def local_file(path: Path, name: str) -> Entry:
    info = path.stat()
    return Entry(name, info.st_size, int(info.st_mtime), stat.S_IMODE(info.st_mode))


def remote_entry(path: str, attrs: Any) -> Entry:
    return Entry(path, int(attrs.size or 0), int(attrs.mtime or 0),
                 stat.S_IMODE(attrs.permissions or 0o644))  # fmt: skip


async def remote_tree(sftp: Any, root: str, rules: IgnoreRules) -> Tree:
    """Every file under the instance's directory ``root`` that the rules keep."""
    top = await sftp.stat(root)
    tree = Tree(dirs={"": stat.S_IMODE(top.permissions or 0o755)})

    async def walk(prefix: str) -> None:
        names = [n for n in await sftp.readdir(_remote_join(root, prefix))
                 if n.filename not in (".", "..")]  # fmt: skip
        if prefix and rules.environment(n.filename for n in names):
            tree.ignored += 1
            tree.dirs.pop(prefix, None)
            return
        subdirs = []
        for item in names:
            rel = _join(prefix, item.filename)
            attrs, mode = item.attrs, item.attrs.permissions or 0
            target = target_of_partial(rel)
            if target is not None:
                tree.partials[target] = int(attrs.size or 0)
                continue
            if stat.S_ISLNK(mode):
                try:
                    attrs = await sftp.stat(_remote_join(root, rel))
                except Exception:  # noqa: BLE001 - a dangling link is nothing to copy
                    continue
                mode = attrs.permissions or 0
                if stat.S_ISDIR(mode):
                    tree.links_skipped.append(rel)
                    continue
            is_dir = stat.S_ISDIR(mode)
            if rules.ignored(rel, is_dir):
                tree.ignored += 1
            elif is_dir:
                tree.dirs[rel] = stat.S_IMODE(mode)
                subdirs.append(rel)
            elif stat.S_ISREG(mode):
                tree.files[rel] = remote_entry(rel, attrs)
        await asyncio.gather(*(walk(sub) for sub in subdirs))

    await walk("")
    return tree


def _remote_join(root: str, rel: str) -> str:
    if not rel:
        return root
    return rel if root in ("", ".") else posixpath.join(root, rel)
