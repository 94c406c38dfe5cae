"""The API key, webhook secret, registry password and SSH passwords never appear in a repr,
str, HTML repr, DataFrame, exception, file or DEBUG log record, across a whole user session
(SSH connections to the instance included).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import pytest
from secret_scan import API_KEY, REGISTRY_PASSWORD, WEBHOOK_SECRET, assert_no_leaks, surfaces

from novita_notebook import Novita
from novita_notebook.errors import ConfigError, NovitaError
from novita_notebook.models import StatusChange
from novita_notebook.notebook.card import InstanceCard
from novita_notebook.notebook.panel import InstancePanel
from novita_notebook.sandbox import Sandbox
from novita_notebook.webhooks import Notifier, Receiver

PRIVATE_IMAGE = "registry.sandbox.local/team/trainer:1.0"


@pytest.fixture
def secret_sandbox():
    with Sandbox(speed=300, seed=7, api_key=API_KEY) as server:
        yield server


@pytest.fixture
def secrets() -> dict[str, str]:
    return {
        "api key": API_KEY,
        "webhook secret": WEBHOOK_SECRET,
        "registry password": REGISTRY_PASSWORD,
    }


@pytest.fixture
def secret_client(secret_sandbox):
    client = Novita(
        api_key=API_KEY,
        api_url=secret_sandbox.url,
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret=WEBHOOK_SECRET,
    )
    yield client
    client.close()


def _log_text(records: list[logging.LogRecord]) -> dict[str, str]:
    texts = {}
    for index, record in enumerate(records):
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        texts[f"log record {index} ({record.name})"] = text
    return texts


def _widget_values(widget: object) -> str:
    """Every string value in an ipywidgets tree (HTML, Text, Textarea...)."""
    if widget is None:
        return ""
    parts = []
    value = getattr(widget, "value", None)
    if isinstance(value, str):
        parts.append(value)
    for child in getattr(widget, "children", ()) or ():
        parts.append(_widget_values(child))
    return "\n".join(parts)


def _error_text(error: BaseException) -> dict[str, str]:
    texts = {"str": str(error), "repr": repr(error)}
    texts["traceback"] = "".join(traceback.format_exception(error))
    texts["attributes"] = repr(vars(error))
    return texts


def test_a_whole_session_never_shows_a_secret(secret_client, secret_sandbox, secrets, caplog):
    caplog.set_level(logging.DEBUG)
    client = secret_client
    seen: dict[str, str] = {}

    def look(label: str, obj: object) -> None:
        for surface, text in surfaces(obj).items():
            seen[f"{label} {surface}"] = text

    look("client", client)
    look("config", client.config)
    seen["config.to_dict"] = repr(client.config.to_dict())
    look("api", client.api)
    look("transport", client.api.transport)

    client.api.save_registry_auth("team-registry", "robot", REGISTRY_PASSWORD)
    auths = client.api.registry_auths()
    assert auths, "the registry auth was not saved"
    for auth in auths:
        look(f"registry auth {auth.name}", auth)

    products = client.products()
    seen["products frame"] = products.to_string() + products.to_html()

    inst = client.create(
        "secret-check-1", gpu="RTX 4090", image=PRIVATE_IMAGE, image_auth_id=auths[0].id
    )
    inst = client.wait(inst, until="running", timeout=60)
    fresh = client.instance(inst.id)
    assert fresh.ssh_password, "the sandbox gave the instance no SSH password to hide"
    secrets = {**secrets, "ssh password": fresh.ssh_password}
    look("instance", fresh)
    # over SSH (the password read from the API, asyncssh logging at DEBUG): a command, a
    # dropped connection reopened, and a changed host key refused
    smi = client.remote.pool.run(fresh.id, ["nvidia-smi", "-L"])
    assert smi.ok, smi.stderr
    secret_sandbox.sever_ssh(fresh.id)
    assert client.remote.pool.run(fresh.id, ["true"], retry=True).ok
    secret_sandbox.rotate_host_key(fresh.id)
    secret_sandbox.sever_ssh(fresh.id)
    with pytest.raises(NovitaError) as caught:
        client.remote.pool.run(fresh.id, ["true"], retry=True)
    seen.update({f"host key error {k}": v for k, v in _error_text(caught.value).items()})
    look("remote", client.remote)
    assert client.forget_host_key(fresh)
    run = client.run(fresh, "answer = 42\nprint('hi')", get=["answer"], on_output=lambda *_: None)
    look("run", run)
    seen["runs frame"] = client.runs().to_string() + client.runs().to_html()
    with pytest.raises(NovitaError) as caught:
        client.run(fresh, "raise RuntimeError('no')", on_output=lambda *_: None)
    seen.update({f"run error {k}": v for k, v in _error_text(caught.value).items()})
    look("fallback report", inst.fallback_report)
    frame = client.instances()
    seen["instances frame"] = frame.to_string() + frame.to_html()
    seen["instance raw"] = repr(fresh.raw)

    watcher = client.watch([fresh], interval=0.05)
    try:
        watcher.wait_for(lambda w: w.ticks >= 2, timeout=10)
        look("watcher", watcher)
        seen["watcher frame"] = watcher.frame.to_string() + watcher.events.to_string()
    finally:
        watcher.stop()

    # the notebook face: the instance card and the live panel, HTML and widget values alike
    card = InstanceCard(fresh)
    look("instance card", card)
    seen["instance card widgets"] = _widget_values(card.widget)
    assert "secret-check-1" in seen["instance card widgets"], "the card widget shows nothing"
    panel = InstancePanel(client, [fresh.id], interval=0.05)
    try:
        time.sleep(0.3)
        look("instance panel", panel)
        seen["instance panel widgets"] = _widget_values(panel.widget)
    finally:
        panel.stop()

    notifier = Notifier.from_client(client, max_attempts=1, timeout=1)
    look("notifier", notifier)
    notifier.close()
    with Receiver(WEBHOOK_SECRET) as receiver:
        look("receiver", receiver)

    # errors a user meets: a wrong key, a bad argument carrying a password, an unknown id
    wrong = Novita(api_key="sk_wrong_but_long_enough_key_1234", api_url=secret_sandbox.url)
    try:
        with pytest.raises(NovitaError) as caught:
            wrong.instances()
        seen.update({f"auth error {k}": v for k, v in _error_text(caught.value).items()})
        look("wrong client", wrong)
    finally:
        wrong.close()
    with pytest.raises(NovitaError) as caught:
        client.instance("no-such-instance-id")
    seen.update({f"not found {k}": v for k, v in _error_text(caught.value).items()})
    bad_auths = [
        ("", "robot", REGISTRY_PASSWORD),
        ("team-2", "", REGISTRY_PASSWORD),
        ("team-3", "robot", REGISTRY_PASSWORD * 40),  # longer than any registry accepts
        ("team-registry", "robot", REGISTRY_PASSWORD),  # the name is taken
    ]
    for index, (name, user, password) in enumerate(bad_auths):
        with pytest.raises(NovitaError) as caught:
            client.create_registry_auth(name, user, password)
        seen.update(
            {f"registry auth error {index} {k}": v for k, v in _error_text(caught.value).items()}
        )

    fresh.delete()
    seen.update(_log_text(caplog.records))
    assert caplog.records, "DEBUG logging produced no records to scan"
    assert_no_leaks("user session", seen, secrets)


def test_config_errors_never_echo_a_secret(secrets):
    for kwargs in (
        {"api_key": API_KEY + " with a space"},
        {"api_key": API_KEY, "webhook_secret": 12345, "api_url": "https://x.example"},
        {"api_key": API_KEY, "api_url": f"https://user:{REGISTRY_PASSWORD}@api.novita.ai"},
    ):
        with pytest.raises(ConfigError) as caught:
            Novita(**kwargs)
        # the URL host legitimately contains what the user typed; the key itself must not show
        texts = _error_text(caught.value)
        assert_no_leaks(
            f"config error for {sorted(kwargs)}",
            texts,
            {k: v for k, v in secrets.items() if k != "webhook secret"},
        )


def test_api_error_messages_are_scrubbed_of_the_key(secret_sandbox, secrets):
    """Even if the server echoed the key or a password back, the error would not show it."""
    client = Novita(api_key=API_KEY, api_url=secret_sandbox.url)
    try:
        with pytest.raises(NovitaError) as caught:
            client.api.save_registry_auth("", "robot", REGISTRY_PASSWORD)
        assert_no_leaks("registry auth error", _error_text(caught.value), secrets)
    finally:
        client.close()


def test_the_ledger_file_holds_no_secret(secret_client, secrets, tmp_path):
    inst = secret_client.create("ledger-secret-1", gpu="RTX 4090", image="ubuntu:22.04")
    fresh = secret_client.wait(inst, until="running", timeout=60)
    secret_client.mine()
    # runs and pinned host keys live in the ledger directory too
    secret_client.run(fresh, "print('hi')", on_output=lambda *_: None)
    home = Path(os.environ["NOVITA_NOTEBOOK_HOME"])
    files = [p for p in home.rglob("*") if p.is_file()]
    assert files, "the ledger wrote nothing"
    texts = {str(p.relative_to(home)): p.read_text(errors="replace") for p in files}
    assert_no_leaks(
        "ledger directory", texts, {**secrets, "ssh password": fresh.ssh_password or ""}
    )


def test_webhook_receiver_command_never_prints_its_secret(tmp_path):
    env = {**os.environ, "WEBHOOK_SECRET": WEBHOOK_SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "novita_notebook", "webhook-receiver", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = process.stdout.readline()
        url = first.split("Listening on ", 1)[1].split(" ", 1)[0]
        change = StatusChange("inst-9", "cli-demo", "pulling", "running", datetime.now(UTC))
        with Notifier(url, WEBHOOK_SECRET, max_attempts=1) as good:
            assert good.send(change)
        with Notifier(url, "not-the-receivers-secret", max_attempts=1) as forged:
            assert not forged.send(change)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    output = first + out + err
    assert "cli-demo" in output, output  # the accepted event was printed
    assert_no_leaks(
        "webhook-receiver output", {"stdout+stderr": output}, {"secret": WEBHOOK_SECRET}
    )


def test_raw_is_masked_however_it_is_given_and_however_it_is_looked_at():
    import copy
    import dataclasses

    from novita_notebook.models import Instance

    secret = "raw-Secret-pass-58k"
    data = {"id": "i-9", "sshPassword": secret, "connectComponentSSH": {"password": secret}}
    built = Instance.from_api(data)
    given = Instance(id="i-9", name="n", status="running", raw={"imageAuth": f"u:{secret}"})
    for inst in (built, given, copy.deepcopy(built), dataclasses.replace(given, name="m")):
        # ssh_password is the user's own field to read; everything else must be masked
        kept = {k: v for k, v in vars(inst).items() if k != "ssh_password"}
        shown = repr(inst) + repr(inst.raw) + repr(kept) + repr(dataclasses.asdict(inst)["raw"])
        assert secret not in shown
    assert built.ssh_password == secret and built.raw["connectComponentSSH"]["password"] == "***"
