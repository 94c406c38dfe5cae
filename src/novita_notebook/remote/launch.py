"""Starting a run exactly once: the run gets its id and its ledger entry before anything is
sent; its files are uploaded (again, harmlessly, on a retry) until the launch; the launch is
guarded on the instance (``mkdir launched``), so a retried or repeated launch after a lost
answer never starts the code a second time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ..errors import RemoteError, ValidationError
from ..models import Instance
from . import scripts, values
from .commands import command_line
from .ssh import NOT_RUNNING, SSHPool, asyncssh_module
from .store import RunRecord, RunStore
from .values import RemotePython

DEFAULT_PYTHON = "python3"


@dataclass(frozen=True)
class RunOptions:
    """A run's options, checked before anything is sent."""

    code: str
    shell: bool = False
    put: Mapping[str, Any] | None = None
    get: tuple[str, ...] = ()
    python: str = DEFAULT_PYTHON
    timeout: float | None = None
    env: Mapping[str, str] | None = None

    @classmethod
    def checked(
        cls,
        code: str,
        *,
        shell: bool = False,
        put: Mapping[str, Any] | None = None,
        get: Sequence[str] | None = None,
        python: str | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> RunOptions:
        if not isinstance(code, str) or not code.strip():
            raise ValidationError("code must be non-empty text", field="code")
        if put is not None and not isinstance(put, Mapping):
            raise ValidationError("put must be a dict of names to values", field="put")
        put_names = values.check_names(put or {}, "put")
        get_names = tuple(values.check_names(get or (), "get"))
        if shell and (put_names or get_names):
            raise ValidationError("put and get need Python; a shell run cannot take them")
        if python is not None and (not isinstance(python, str) or not python.strip()):
            raise ValidationError("python must name an interpreter on the instance", field="python")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise ValidationError(
                f"timeout must be a number of seconds > 0, got {timeout!r}", field="timeout"
            )
        return cls(
            code=code,
            shell=bool(shell),
            put=dict(put) if put else None,
            get=get_names,
            python=(python or DEFAULT_PYTHON).strip(),
            timeout=float(timeout) if timeout is not None else None,
            env=scripts.check_env(env),
        )

    @property
    def kind(self) -> str:
        return "shell" if self.shell else "python"

    @property
    def code_hash(self) -> str:
        return hashlib.sha256(f"{self.kind}\0{self.code}".encode()).hexdigest()[:16]


def new_run_id() -> str:
    return "r-" + secrets.token_hex(5)


def probe_python(pool: SSHPool, instance_id: str, options: RunOptions) -> RemotePython | None:
    """Ask the instance's interpreter about itself when values travel; raises in words
    (PythonMismatchError) when they could not, before anything is sent."""
    if not options.put and not options.get:
        return None
    needed = values.modules_needed(options.put or {})
    argv = [options.python, "-c", scripts.PYTHON_PROBE, *needed]
    answer = pool.run(instance_id, argv, retry=True, timeout=60)
    remote = values.parse_probe(options.python, answer.exit_status, answer.stdout, answer.stderr)
    values.check_compatible(remote, needed)
    return remote


def run_files(run_id: str, options: RunOptions, remote: RemotePython | None) -> dict[str, bytes]:
    """The files a run needs on the instance, by name in its run directory."""
    protocol = values.protocol_for(remote) if remote else 4
    argument = json.dumps({"get": list(options.get), "protocol": protocol})
    if options.shell:
        files = {"code.sh": options.code.encode()}
    else:
        files = {"code.py": options.code.encode(), "main.py": scripts.PYTHON_MAIN.encode()}
        if options.put:
            files["put.pickle"] = values.dumps(options.put, protocol)
    files["run.sh"] = scripts.supervisor(
        python=None if options.shell else options.python,
        argument=argument,
        env=options.env or {},
        timeout=options.timeout,
    ).encode()
    return files


def start(
    pool: SSHPool, store: RunStore, instance: Instance, options: RunOptions
) -> tuple[RunRecord, RemotePython | None]:
    """Probe (when values travel), remember, upload and launch; returns the record."""
    remote = probe_python(pool, instance.id, options)
    run_id = new_run_id()
    record = RunRecord(
        id=run_id,
        instance_id=instance.id,
        instance_name=instance.name,
        kind=options.kind,
        code_hash=options.code_hash,
        started=datetime.now(UTC),
        price_per_hour=instance.price_per_hour,
        timeout=options.timeout,
        python=None if options.shell else options.python,
        get=options.get,
        remote_dir=scripts.run_dir(run_id),
    )
    files = run_files(run_id, options, remote)
    store.save(record)  # the id exists before the run does: a retry finds it, never repeats it

    attempts = 0

    async def upload_and_launch(conn: Any) -> bytes:
        nonlocal attempts
        attempts += 1
        sftp = await pool.sftp(conn, instance.id)
        directory = record.remote_dir
        # A retry may follow a launch whose answer was lost: then upload nothing.
        if attempts == 1 or not await sftp.exists(f"{directory}/launched"):
            await _make_private_dir(sftp, directory)
            await asyncio.gather(
                *(_write(sftp, f"{directory}/{name}", data) for name, data in files.items())
            )
        answer = await conn.run(command_line(scripts.launch_command(run_id)), encoding=None)
        return answer.stdout or b""

    try:
        pool.call(instance.id, upload_and_launch, retry=True)
    except RemoteError as error:
        if error.reason == NOT_RUNNING:  # it never reached the instance: say so in the ledger
            store.save(replace(record, state="not_started", finished=datetime.now(UTC)))
        raise
    return record, remote


async def _make_private_dir(sftp: Any, directory: str) -> None:
    """The run's directory, readable by its owner only (it may hold the put values)."""
    asyncssh = asyncssh_module()
    private = asyncssh.SFTPAttrs(permissions=0o700)
    try:
        await sftp.mkdir(directory, private)
    except asyncssh.SFTPError as error:
        if error.code == asyncssh.FX_FILE_ALREADY_EXISTS or await sftp.isdir(directory):
            return  # a retry: made by the attempt before
        await sftp.makedirs(directory.rsplit("/", 1)[0], exist_ok=True)
        await sftp.mkdir(directory, private)


async def _write(sftp: Any, path: str, data: bytes) -> None:
    async with sftp.open(path, "wb") as handle:
        await handle.write(data)
