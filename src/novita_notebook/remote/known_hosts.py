"""Host keys pinned on first use, per API URL and instance id (``ssh-host-keys.json`` in the
ledger directory). Instances share proxy hosts and ports, so the id, not host:port, is what a
key belongs to. A different key later is refused until the user forgets the pin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import HostKeyChangedError
from .jsonfile import JsonFile, scope_of

HOST_KEYS_FILE = "ssh-host-keys.json"


class HostKeys:
    """The pins of one API URL."""

    def __init__(self, api_url: str, directory: Path | None = None) -> None:
        self.scope = scope_of(api_url)
        self._file = JsonFile(HOST_KEYS_FILE, directory)

    @property
    def path(self) -> Path:
        return self._file.path

    def pinned(self, instance_id: str) -> str | None:
        """The pinned key in OpenSSH public-key form, or None."""
        entry = self._file.read(self.scope).get(instance_id)
        return entry.get("key") if isinstance(entry, dict) else None

    def pin(self, instance_id: str, key: str, fingerprint: str) -> None:
        """Pin ``key`` unless a key is pinned already (the first one wins, also when two
        kernels connect at once); a different pinned key raises HostKeyChangedError."""

        def change(entries: dict[str, Any]) -> str | None:
            entry = entries.get(instance_id)
            if isinstance(entry, dict) and entry.get("key"):
                return entry["key"] if entry["key"] != key else None
            entries[instance_id] = {"key": key, "fingerprint": fingerprint}
            return None

        other = self._file.update(self.scope, change)
        if other is not None:
            raise self.changed(instance_id, self.fingerprint_of(instance_id), fingerprint)

    def fingerprint_of(self, instance_id: str) -> str | None:
        entry = self._file.read(self.scope).get(instance_id)
        return entry.get("fingerprint") if isinstance(entry, dict) else None

    def forget(self, instance_id: str) -> bool:
        """Drop the pin (the next connection pins what it sees). True if there was one."""
        if not self.path.exists():
            return False
        return self._file.update(self.scope, lambda e: e.pop(instance_id, None) is not None)

    def changed(
        self, instance_id: str, pinned: str | None, presented: str | None
    ) -> HostKeyChangedError:
        return HostKeyChangedError(
            f"instance {instance_id} presented SSH host key {presented}, not the key "
            f"{pinned} pinned when this package first connected to it; refusing to connect "
            "(the instance may have been rebuilt, or something is in between)",
            instance_id=instance_id,
            pinned=pinned,
            presented=presented,
            hint=(
                "If you know why the key changed, novita.forget_host_key(instance) drops the "
                f"pin (kept in {self.path})."
            ),
        )
