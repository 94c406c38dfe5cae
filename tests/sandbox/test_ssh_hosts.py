"""Sandbox instances really run code: OpenSSH's own client reaches a running instance's SSH
server at its ``sshCommand`` with its password, runs nvidia-smi, python3 and SFTP in the
instance's home; the lifecycle ends processes (stop, restart) and disks (delete, keepDataDay).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from openssh import needs_openssh, sftp, ssh
from sandbox_helpers import Api

pytestmark = needs_openssh


def running(api: Api, **overrides) -> dict:
    instance_id = api.create(**overrides)
    api.wait_for(instance_id, "running")
    return api.instance(instance_id)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of this process lingers as a zombie until reaped: that is not alive.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_openssh_runs_nvidia_smi_python_and_the_shell_in_the_instance_home(api, sandbox):
    detail = running(api, envs=[{"key": "DATASET", "value": "mnist"}])
    sandbox.set_utilization(detail["id"], 37)
    done = ssh(
        detail,
        "nvidia-smi --query-gpu=name,utilization.gpu,memory.total --format=csv,noheader; "
        "nvidia-smi -L; python3 -c 'import sys; print(sys.version_info[0])'; "
        'echo "home=$HOME pwd=$(pwd) user=$USER data=$DATASET"; echo oops >&2; exit 7',
    )
    assert done.returncode == 7, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "NVIDIA GeForce RTX 4090, 37 %, 24564 MiB"
    assert lines[1].startswith("GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-")
    assert lines[2] == "3"
    home = sandbox.instance_home(detail["id"])
    assert lines[3] == f"home={home} pwd={home} user=root data=mnist"
    assert done.stderr.strip() == "oops"
    table = ssh(detail, "nvidia-smi").stdout
    assert "NVIDIA GeForce RTX 4090" in table and "37%" in table and "24564MiB" in table
    sandbox.set_utilization(detail["id"], None)  # back to the default pattern: busy, then idle
    reading = ssh(detail, "nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits")
    assert reading.stdout.strip() in {"88", "2"}


def test_nvidia_smi_lists_the_instances_python_processes_and_refuses_unknown_options(api):
    detail = running(api, productId="H100-80GB.16c240g", clusterId="us-west-1", gpuNum=2)
    done = ssh(
        detail,
        "python3 -c 'import time; time.sleep(30)' & sleep 0.3; "
        "nvidia-smi --query-compute-apps=pid,process_name --format=csv,noheader; "
        "nvidia-smi --query-gpu=index,name --format=csv,noheader; kill %1; "
        "nvidia-smi --frobnicate; echo status=$?",
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and "python" in lines[0], done.stdout
    assert lines[1:3] == ["0, NVIDIA H100 80GB HBM3", "1, NVIDIA H100 80GB HBM3"]
    assert lines[3] == "status=2" and "nvidia-smi -h" in done.stderr


def test_a_wrong_password_and_an_instance_that_is_not_running_are_refused(api):
    detail = running(api)
    refused = ssh(detail, "echo in", password="not-the-password")
    # sshpass's own exit status 5: the server asked for the password again (it was refused)
    assert refused.returncode == 5 and "in" not in refused.stdout
    api.post("/gpu/instance/stop", {"instanceId": detail["id"]})
    api.wait_for(detail["id"], "exited")
    stopped = ssh(detail, "echo in")
    assert stopped.returncode == 255 and "not running" in stopped.stderr


def test_sftp_starts_in_the_home_and_sees_the_instance_root(api, sandbox, tmp_path):
    detail = running(api)
    local = tmp_path / "notes.txt"
    local.write_text("hello from the laptop\n")
    done = sftp(detail, f"pwd\nput {local} notes.txt\nmkdir results\nls /\n")
    assert done.returncode == 0, done.stderr
    assert "Remote working directory: /root" in done.stdout
    assert "tmp" in done.stdout and "root" in done.stdout
    home = Path(sandbox.instance_home(detail["id"]))
    assert (home / "notes.txt").read_text() == "hello from the laptop\n"
    assert (home / "results").is_dir()
    back = tmp_path / "back.txt"
    assert sftp(detail, f"get /root/notes.txt {back}\n").returncode == 0
    assert back.read_text() == "hello from the laptop\n"


def start_sleeper(detail: dict) -> int:
    """A detached process (its own session, output to a file) that outlives the connection."""
    done = ssh(detail, "setsid nohup sleep 300 >/dev/null 2>&1 < /dev/null & echo $!")
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.strip())
    assert alive(pid)
    return pid


def test_stop_ends_the_instances_processes_and_keeps_its_disk(api, sandbox):
    detail = running(api)
    assert ssh(detail, "echo kept > data.txt").returncode == 0
    pid = start_sleeper(detail)
    api.post("/gpu/instance/stop", {"instanceId": detail["id"]})
    wait_until(lambda: not alive(pid))
    api.wait_for(detail["id"], "exited")
    api.post("/gpu/instance/start", {"instanceId": detail["id"]})
    api.wait_for(detail["id"], "running")
    assert ssh(detail, "cat data.txt").stdout == "kept\n"


def test_restart_ends_processes_even_when_nobody_looks_in_between(api):
    detail = running(api)
    pid = start_sleeper(detail)
    api.post("/gpu/instance/restart", {"instanceId": detail["id"]})
    time.sleep(0.3)  # long enough at speed 300 for the whole restart to pass unobserved
    assert api.instance(detail["id"])["status"] == "running"
    wait_until(lambda: not alive(pid))
    assert ssh(detail, "echo back").stdout == "back\n"


def test_delete_removes_the_disk_and_closes_the_port(api, sandbox):
    detail = running(api)
    pid = start_sleeper(detail)
    home = Path(sandbox.instance_home(detail["id"]))
    assert home.is_dir()
    api.post("/gpu/instance/delete", {"instanceId": detail["id"]})
    wait_until(lambda: not alive(pid) and not home.exists())
    gone = ssh(detail, "echo in")
    assert gone.returncode == 255 and "in" not in gone.stdout


def test_a_disk_stopped_longer_than_keep_data_day_is_empty_at_the_next_start():
    from sandbox_helpers import Api as Session

    from novita_notebook.sandbox import Sandbox

    # 7 days pass in 0.06 s at this speed, so the stop outlasts keepDataDay at once.
    with Sandbox(speed=10_000_000, seed=7) as fast:
        api = Session(fast)
        detail = running(api)
        assert detail["keepDataDay"] == 7
        assert ssh(detail, "echo old > data.txt").returncode == 0
        api.post("/gpu/instance/stop", {"instanceId": detail["id"]})
        api.wait_for(detail["id"], "exited")
        time.sleep(0.1)
        api.post("/gpu/instance/start", {"instanceId": detail["id"]})
        api.wait_for(detail["id"], "running")
        assert ssh(detail, "ls -A").stdout == ""
        api.session.close()


def test_a_network_volume_is_shared_at_each_instances_mount_path(api):
    volume = api.post(
        "/networkstorage/create", {"clusterId": "eu-de-1", "storageName": "d", "storageSize": 10}
    ).json()
    first = running(
        api,
        name="one",
        productId="4090.16c96g.v2",
        networkStorages=[{"Id": volume, "mountPoint": "/network"}],
    )
    second = running(
        api,
        name="two",
        productId="4090.16c96g.v2",
        networkStorages=[{"Id": volume, "mountPoint": "/workspace/data"}],
    )
    assert ssh(first, "echo shared > ../network/x.txt").returncode == 0
    assert sftp(second, "ls /workspace/data\n").stdout.count("x.txt") == 1
    assert ssh(second, "cat ../workspace/data/x.txt").stdout == "shared\n"
    # the volume outlives an instance: delete the first, the second still reads it
    api.post("/gpu/instance/delete", {"instanceId": first["id"]})
    api.wait_for(first["id"], "removed")
    assert ssh(second, "cat ../workspace/data/x.txt").stdout == "shared\n"


def test_only_the_environment_sshd_accepts_by_default_passes(api):
    detail = running(api)
    done = ssh(
        detail,
        'echo "lang=$LANG foo=$FOO"',
        extra=["-o", "SetEnv=LANG=fr_FR.UTF-8 FOO=bar"],
    )
    assert done.stdout == "lang=fr_FR.UTF-8 foo=\n"


def test_a_terminal_session_gets_a_pty(api):
    detail = running(api)
    done = ssh(detail, "tty; stty size", extra=["-tt"])
    lines = done.stdout.replace("\r", "").splitlines()
    assert lines[0].startswith("/dev/pts/"), done.stdout


def test_severed_and_refused_connections_and_a_rotated_host_key(api, sandbox, tmp_path):
    detail = running(api)
    known = str(tmp_path / "known_hosts")
    first = ssh(detail, "echo one", known_hosts=known, strict="accept-new")
    assert first.stdout == "one\n"
    before = sandbox.host_key_fingerprint(detail["id"])
    assert before and before.startswith("SHA256:")
    assert sandbox.rotate_host_key(detail["id"]) != before
    changed = ssh(detail, "echo two", known_hosts=known, strict="yes")
    assert changed.returncode == 255 and "IDENTIFICATION HAS CHANGED" in changed.stderr
    sandbox.refuse_ssh(1)
    assert ssh(detail, "echo three").returncode == 255
    assert ssh(detail, "echo four").stdout == "four\n"
    with pytest.raises(ValueError, match="count"):
        sandbox.refuse_ssh(-1)


def test_closing_the_sandbox_ends_every_process_and_removes_the_disks():
    from sandbox_helpers import Api as Session

    from novita_notebook.sandbox import Sandbox

    with Sandbox(speed=300, seed=7) as other:
        api = Session(other)
        detail = running(api)
        pid = start_sleeper(detail)
        home = Path(other.instance_home(detail["id"]))
        api.session.close()
    wait_until(lambda: not alive(pid))
    assert not home.exists()
