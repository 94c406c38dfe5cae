"""Instance.from_api's fast path: every field set, the same object the constructor builds,
and each quirk of the live shapes (numbers as strings, "0" times, ports, envs) still parsed."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from novita_notebook.models import Env, Instance, PortMapping, StatusError

FIXTURES = Path(__file__).resolve().parent / "contract" / "fixtures"


def _fixture_instances() -> list[dict]:
    single = json.loads((FIXTURES / "instance.json").read_text())["response"]
    listing = json.loads((FIXTURES / "instances.json").read_text())["response"]["instances"]
    return [single, *listing]


def _rebuilt(inst: Instance) -> Instance:
    """The same values through the dataclass constructor (raw read back unmasked)."""
    values = {f.name: getattr(inst, f.name) for f in dataclasses.fields(Instance)}
    values["raw"] = vars(inst)["_raw_source"].data
    return Instance(**values)


@pytest.mark.parametrize("raw", _fixture_instances(), ids=lambda r: r.get("name", "?"))
def test_every_field_is_set_and_equals_the_constructors(raw):
    inst = Instance.from_api(copy.deepcopy(raw))
    names = {f.name for f in dataclasses.fields(Instance)} - {"raw"}
    assert names <= set(vars(inst)), names - set(vars(inst))
    rebuilt = _rebuilt(inst)
    assert rebuilt == inst
    for name in names:
        assert getattr(rebuilt, name) == getattr(inst, name), name
    assert inst.raw == rebuilt.raw


def test_quirks_of_the_live_shapes():
    inst = Instance.from_api(
        {
            "id": "i-1",
            "name": "n",
            "status": "pulling",
            "gpuNum": "2",
            "cpuNum": 16.0,
            "memory": "62.5",
            "rootfsSize": "junk",
            "entrypoint": "",
            "spotStatus": "",
            "createdAt": "1700000000",
            "lastStartedAt": "0",
            "lastStoppedAt": 0,
            "spotReclaimTime": "2026-11-27T10:00:00Z",
            "portMappings": [
                {"port": "8888", "type": "http", "endpoint": "https://x/"},
                {"port": "nope"},
                "junk",
                {"port": 22},
            ],
            "envs": [{"key": "A", "value": 1}, "junk"],
            "statusError": {"state": "", "message": "pull failed"},
            "connectComponentSSH": {"sshCommand": "ssh root@h.example -p 30022", "password": "pw"},
            "node": [{"maxRootfsSize": "200"}],
        }
    )
    assert (inst.gpu_num, inst.cpu_num, inst.memory_gb, inst.rootfs_size) == (2, 16, 62, None)
    assert Instance.from_api({"gpuNum": "²"}).gpu_num is None  # a digit int() refuses
    assert Instance.from_api({"gpuNum": "٣"}).gpu_num == 3  # a decimal digit it takes
    assert inst.entrypoint is None and inst.spot_status is None  # "" means none
    assert inst.created_at == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert inst.started_at is None and inst.stopped_at is None
    assert inst.spot_reclaim_time == datetime(2026, 11, 27, 10, tzinfo=UTC)
    assert inst.port_mappings == (
        PortMapping(8888, "http", "https://x/"),
        PortMapping(22, "tcp", None),
    )
    assert inst.envs == (Env("A", "1"),)
    # Still pulling: the statusError is a warning until the instance comes to rest.
    assert inst.status_error == StatusError("", "pull failed") and inst.phase == "provisioning"
    assert inst.warning == inst.status_error and not inst.failed
    rested = Instance.from_api({"status": "exited", "statusError": {"message": "pull failed"}})
    assert rested.failed and rested.phase == "failed" and rested.warning is None
    assert (inst.ssh_host, inst.ssh_port, inst.ssh_password) == ("h.example", 30022, "pw")
    assert inst.max_rootfs_size == 200
    assert inst.raw["connectComponentSSH"]["password"] == "***"


def test_an_empty_dict_gives_an_empty_instance():
    inst = Instance.from_api({})
    assert inst == Instance(id="", name="", status="")
    assert inst.phase == "unknown" and inst.raw == {}
