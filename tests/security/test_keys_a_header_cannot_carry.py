"""A key pasted with a zero-width space (or any character an HTTP header cannot carry) is
refused by the config check with a clear message that never echoes it, and no status file, log
line or error text of the guard process contains the key, whatever it contains.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from secret_scan import API_KEY, assert_no_leaks

from novita_notebook import Novita
from novita_notebook.errors import ConfigError
from novita_notebook.guard.process import ensure_guard_running, guard_paths, guard_status
from novita_notebook.guard.rules import GuardRules
from novita_notebook.guard.store import GuardStore

PASTED = [
    API_KEY + "\u200b",  # a zero-width space copied along with it
    "\ufeff" + API_KEY,  # a byte-order mark
    API_KEY[:10] + "\u2013" + API_KEY[11:],  # a dash a word processor "improved"
    API_KEY + "é",
]


@pytest.mark.parametrize(
    "key", PASTED, ids=["zero-width space", "byte-order mark", "en dash", "latin letter"]
)
def test_the_config_check_refuses_the_key_and_never_echoes_it(key):
    with pytest.raises(ConfigError) as caught:
        Novita(api_key=key, api_url="http://127.0.0.1:9")
    text = str(caught.value)
    assert "api_key" in text and "HTTP header" in text
    assert_no_leaks("config error", [text, repr(caught.value)], {"api key": API_KEY})


def test_the_guard_process_never_writes_such_a_key_anywhere(sandbox):
    key = PASTED[0]
    store = GuardStore(api_url=sandbox.api_url)
    store.set_rules("some-instance", GuardRules.parse(stop_after="1h"))
    environ = {k: v for k, v in os.environ.items() if k != "NOVITA_GUARD_AUTOSTART"}
    ensure_guard_running(sandbox.url, api_key=key, interval=0.2, environ=environ)
    time.sleep(1.5)  # room for several ticks, if it ran at all
    paths = guard_paths(sandbox.url)
    pid = guard_status(sandbox.url).get("pid")
    if pid and guard_status(sandbox.url)["running"]:
        os.kill(pid, 15)
    home = Path(os.environ["NOVITA_NOTEBOOK_HOME"])
    texts = {p.name: p.read_bytes().decode("utf-8", "replace") for p in home.iterdir()
             if p.is_file()}  # fmt: skip
    assert paths["log"].name in texts  # the process ran and wrote its output
    assert_no_leaks("guard files", texts, {"api key": API_KEY})
    assert "HTTP header" in texts[paths["log"].name]  # it says why it could not start
