"""Sandbox instances' disks: one directory per instance (its "/", with the home at ``root/``),
network volumes as directories shared by every instance mounting them, and the small
programs on each instance's PATH (``python3``, ``python``, ``nvidia-smi``).

An emulator, not a jail: commands run as local processes of the user running the sandbox;
absolute paths inside commands are the host's. Paths relative to the home, and SFTP paths
(rooted at the instance's directory), are the instance's own.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

HOME = "root"  # the home directory inside an instance's root: /root, as on Novita's images
_NVIDIA_SMI = Path(__file__).with_name("nvidia_smi.py")


@dataclass(frozen=True)
class DiskSpec:
    """What preparing an instance's disk needs to know, read under the world's lock."""

    instance_id: str
    mounts: tuple[tuple[str, str], ...]  # (storage id, mount path)
    started_at: float | None  # the last arrival at running
    stopped_at: float | None  # the last arrival at exited
    keep_seconds: float  # keepDataDay, scaled: a longer stop loses the disk
    gpu_url: str  # where nvidia-smi reads the instance's GPUs


class Disks:
    """The directories behind every instance. The base directory is made on first use and
    removed by ``close()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._base: Path | None = None
        self._wiped_for: dict[str, float] = {}  # instance id -> start that already lost its disk

    @property
    def base(self) -> Path:
        with self._lock:
            if self._base is None:
                self._base = Path(tempfile.mkdtemp(prefix="novita-sandbox-disks-"))
            return self._base

    @property
    def in_use(self) -> bool:
        return self._base is not None

    def root(self, instance_id: str) -> Path:
        return self.base / "instances" / instance_id

    def home(self, instance_id: str) -> Path:
        return self.root(instance_id) / HOME

    def bin_dir(self, instance_id: str) -> Path:
        return self.base / "bin" / instance_id

    def volume(self, storage_id: str) -> Path:
        return self.base / "volumes" / storage_id

    def prepare(self, spec: DiskSpec) -> Path:
        """Make the instance's disk ready for a command; returns its home. A disk kept past
        keepDataDay while stopped is gone at the next start (a fresh, empty disk)."""
        started, stopped = spec.started_at, spec.stopped_at
        if (
            started is not None
            and stopped is not None
            and started - stopped > spec.keep_seconds
            and self._wiped_for.get(spec.instance_id) != started
        ):
            self._wiped_for[spec.instance_id] = started
            self.wipe(spec.instance_id)
        home = self.home(spec.instance_id)
        home.mkdir(parents=True, exist_ok=True)
        (self.root(spec.instance_id) / "tmp").mkdir(exist_ok=True)
        for storage_id, mount_path in spec.mounts:
            self._mount(spec.instance_id, storage_id, mount_path)
        self._write_programs(spec)
        return home

    def _mount(self, instance_id: str, storage_id: str, mount_path: str) -> None:
        """A network volume appears at its mount path inside the instance's root, as a link
        to the volume's shared directory. A mount path that would hide the root or the home
        is not mounted."""
        relative = os.path.normpath("/" + mount_path).lstrip("/")
        if not relative or relative in (HOME, ".") or relative.startswith(".."):
            return
        volume = self.volume(storage_id)
        volume.mkdir(parents=True, exist_ok=True)
        link = self.root(instance_id) / relative
        if link.is_symlink():
            if Path(os.readlink(link)) == volume:
                return
            link.unlink()
        elif link.exists():
            return  # a directory of the instance's own is already there
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(volume, target_is_directory=True)

    def _write_programs(self, spec: DiskSpec) -> None:
        """``python3``/``python`` run this sandbox's interpreter; ``nvidia-smi`` reads the
        instance's GPUs from the sandbox."""
        directory = self.bin_dir(spec.instance_id)
        directory.mkdir(parents=True, exist_ok=True)
        python = shlex.quote(sys.executable)
        programs = {
            "python3": f'#!/bin/sh\nexec {python} "$@"\n',
            "python": f'#!/bin/sh\nexec {python} "$@"\n',
            "nvidia-smi": (
                "#!/bin/sh\n"
                f"NOVITA_SANDBOX_GPU_URL={shlex.quote(spec.gpu_url)} "
                f"NOVITA_SANDBOX_GPU_INSTANCE={shlex.quote(spec.instance_id)} "
                f'exec {python} -I -S {shlex.quote(str(_NVIDIA_SMI))} "$@"\n'
            ),
        }
        for name, text in programs.items():
            path = directory / name
            with contextlib.suppress(OSError):
                if path.read_text() == text:
                    continue
            temporary = path.with_suffix(".tmp")
            temporary.write_text(text)
            temporary.chmod(0o755)
            temporary.replace(path)

    def wipe(self, instance_id: str) -> None:
        """The instance's disk is gone (delete, or kept past keepDataDay); volumes stay."""
        if self._base is None:
            return
        for path in (self.root(instance_id), self.bin_dir(instance_id)):
            shutil.rmtree(path, ignore_errors=True)

    def remove_volume(self, storage_id: str) -> None:
        if self._base is not None:
            shutil.rmtree(self.volume(storage_id), ignore_errors=True)

    def volumes(self) -> list[str]:
        """Ids of the volumes that have a directory."""
        if self._base is None:
            return []
        with contextlib.suppress(OSError):
            return [p.name for p in (self._base / "volumes").iterdir()]
        return []

    def close(self) -> None:
        """Remove every disk and volume (the sandbox is gone)."""
        with self._lock:
            base, self._base = self._base, None
            self._wiped_for.clear()
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
