"""Templates and registry auths: find by id or exact name, create and delete. Passwords are
sent once and never kept, shown or logged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..api import NovitaAPI
from ..catalog import Catalog
from ..errors import NotFoundError, ValidationError
from ..models import RegistryAuth, Template
from ..options.create import DEFAULT_ROOTFS_GB
from ..validation import (
    MAX_COMMAND,
    Problems,
    check_image,
    check_rootfs,
    check_text,
    check_text_field,
    group_ports,
    parse_envs,
    parse_ports,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


class Resources:
    """Templates (through the catalog's cache) and registry auths (always fresh)."""

    def __init__(self, api: NovitaAPI, catalog: Catalog) -> None:
        self.api = api
        self.catalog = catalog

    def find_template(self, key: str) -> Template:
        for refresh in (False, True):
            templates = self.catalog.templates(refresh=refresh)
            by_id = [t for t in templates if t.id == key]
            if by_id:
                return by_id[0]
            by_name = [t for t in templates if t.name == key]
            if len(by_name) > 1:
                ids = ", ".join(t.id for t in by_name)
                raise ValidationError(
                    f"template: the name {key!r} is used by several templates ({ids}); pass the id",
                    field="template",
                )
            if by_name:
                return by_name[0]
        try:
            # Not listed (e.g. another user's public template): ask for it by id.
            return self.api.template(key)
        except (NotFoundError, ValidationError):
            pass
        known = ", ".join(f"{t.name} ({t.id})" for t in templates[:10])
        raise NotFoundError(
            f"template: no template with id or name {key!r}. Known: {known or 'none'}",
            hint="List them with Novita.templates(); create one with Novita.create_template().",
        )

    def create_template(
        self,
        name: str,
        image: str,
        *,
        ports: Any = None,
        envs: Any = None,
        rootfs_gb: int = DEFAULT_ROOTFS_GB,
        start_command: str | None = None,
        entrypoint: str | None = None,
        image_auth_id: str | None = None,
        readme: str | None = None,
    ) -> Template:
        """See ``Novita.create_template``."""
        problems = Problems()
        check_text(name, problems, "name", min_len=1, max_len=255)
        if name is None:
            problems.add("name", "is required")
        if image is None:
            problems.add("image", "is required")
        checked_image = check_image(image, problems)
        checked_ports = parse_ports(ports, problems)
        checked_envs = parse_envs(envs, problems)
        checked_rootfs = check_rootfs(rootfs_gb, problems)
        check_text(start_command, problems, "start_command", max_len=MAX_COMMAND)
        check_text(entrypoint, problems, "entrypoint", max_len=MAX_COMMAND)
        check_text(readme, problems, "readme", max_len=102400)
        problems.raise_if_any()
        if any(t.name == name for t in self.catalog.templates(refresh=True)):
            raise ValidationError(
                f"name: a template named {name!r} already exists; choose another name",
                field="name",
            )
        auth_id = (
            self.find_registry_auth(image_auth_id, field="image_auth_id").id
            if image_auth_id
            else ""
        )
        body: dict[str, Any] = {
            "name": name,
            "readme": readme or "",
            "type": "instance",
            "channel": "private",
            "image": checked_image,
            "imageAuth": auth_id,
            "startCommand": start_command or "",
            "entrypoint": entrypoint or "",
            "rootfsSize": checked_rootfs,
            "ports": group_ports(checked_ports),
            "envs": [{"key": k, "value": v} for k, v in checked_envs],
        }
        template_id = self.api.create_template(body)
        self.catalog.templates(refresh=True)
        return self.api.template(template_id)

    def delete_template(self, id_or_name: str) -> None:
        """Delete a private template by id or exact name."""
        check_text_field(id_or_name, "id_or_name", min_len=1, max_len=255)
        found = self.find_template(id_or_name)
        self.api.delete_template(found.id)
        self.catalog.templates(refresh=True)

    # -- registry auths ------------------------------------------------------------------------
    def find_registry_auth(self, key: str, *, field: str, owner: str | None = None) -> RegistryAuth:
        auths = self.api.registry_auths()
        for auth in auths:
            if auth.id == key:
                return auth
        named = [a for a in auths if a.name == key]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise ValidationError(
                f"{field}: the registry auth name {key!r} is used {len(named)} times; pass the id",
                field=field,
            )
        who = f"{owner} uses registry auth {key!r}" if owner else f"registry auth {key!r}"
        known = ", ".join(f"{a.name} ({a.id})" for a in auths) or "none"
        raise NotFoundError(
            f"{field}: {who}, which does not exist. Known registry auths: {known}",
            field=field,
            hint="Create it with Novita.create_registry_auth(name, username, password).",
        )

    def registry_auths(self) -> pd.DataFrame:
        """Registry credentials as a table: id, name, username (passwords are never shown)."""
        import pandas as pd

        rows = [
            {"id": a.id, "name": a.name, "username": a.username} for a in self.api.registry_auths()
        ]
        return pd.DataFrame(rows, columns=["id", "name", "username"])

    def create_registry_auth(self, name: str, username: str, password: str) -> RegistryAuth:
        """Store credentials for a private registry; returns it without the password."""
        problems = Problems()
        for field_name, value, limit in (("name", name, 255), ("username", username, 511)):
            if value is None:
                problems.add(field_name, "is required")
            else:
                check_text(value, problems, field_name, min_len=1, max_len=limit)
        if not isinstance(password, str) or not 1 <= len(password) <= 1024:
            # Never echo the value: only its shape.
            problems.add("password", "must be a string of 1–1024 characters")
        problems.raise_if_any()
        if any(a.name == name for a in self.api.registry_auths()):
            raise ValidationError(
                f"name: a registry auth named {name!r} already exists; choose another name",
                field="name",
            )
        self.api.save_registry_auth(name, username, password)
        for auth in self.api.registry_auths():
            if auth.name == name:
                return replace(auth, password="")
        raise NotFoundError(f"registry auth {name!r} was saved but is not listed")

    def delete_registry_auth(self, id_or_name: str) -> None:
        """Delete registry credentials by id or exact name."""
        check_text_field(id_or_name, "id_or_name", min_len=1, max_len=255)
        found = self.find_registry_auth(id_or_name, field="id_or_name")
        self.api.delete_registry_auth(found.id)
