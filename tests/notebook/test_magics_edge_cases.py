"""What a new user and a tester broke in the magics, through a real IPython shell
against the sandbox: cell keys, cleanup previews, usage, option sets, Ctrl-C, panels, mine,
instances columns and wait's validation."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from novita_notebook import validation
from novita_notebook.models import Instance
from novita_notebook.notebook import spec


def run(ip, line):
    return ip.run_line_magic("novita", line)


def cell(ip, line, body):
    return ip.run_cell_magic("novita", line, body)


# -- #6 repeated keys ---------------------------------------------------------------------------


def test_cell_repeated_key_is_refused_and_nothing_is_created(ip, client, sandbox, capsys):
    assert cell(ip, "create", "name: first\ngpu: RTX 4090\nname: second") is None
    err = capsys.readouterr().err
    assert "'name' is given twice" in err and "line 1" in err and "line 3" in err
    assert not any(r["path"].endswith("/gpu/instance/create") for r in sandbox.requests())


def test_cell_yaml_list_is_explained(ip, capsys):
    assert cell(ip, "create", "name: a\ngpu: RTX 4090\nregions:\n- AS-SGP-02") is None
    assert "YAML lists are not supported" in capsys.readouterr().err


def test_cell_key_given_on_the_line_and_in_the_body_is_refused(ip, capsys):
    assert cell(ip, "create --gpu 4090", "name: a\ngpu: RTX 4090") is None
    err = capsys.readouterr().err
    assert "'gpu' is given twice" in err and "%%novita line" in err


# -- #9 cleanup -----------------------------------------------------------------------------------


def test_cleanup_without_flags_previews_what_each_flag_would_do(ip, client, capsys):
    run(ip, 'create up-1 --gpu "RTX 4090" --wait')
    run(ip, 'create new-1 --gpu "RTX 4090"')
    capsys.readouterr()
    plan = run(ip, "cleanup")
    out = capsys.readouterr().out
    rows = dict(zip(plan["name"], plan["with --stop"], strict=True))
    assert rows["up-1"] == "stop"
    assert set(plan["with --delete"]) == {"delete"}
    assert "--stop would stop 1" in out and "--delete would delete 2" in out
    assert client.instance("up-1").status == "running"  # a preview touches nothing


def test_cleanup_stop_and_delete_together_is_refused(ip, client):
    run(ip, 'create both-1 --gpu "RTX 4090" --wait')
    with pytest.raises(UsageError) as caught:
        run(ip, "cleanup --stop --delete")
    assert "not allowed with argument" in str(caught.value)
    assert "usage: %novita cleanup" in str(caught.value)
    assert client.instance("both-1").status == "running"


# -- #10 usage of the subcommand ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "usage", "hint"),
    [
        ("products --gpuu 4090", "usage: %novita products", "--gpu"),
        ("create x --gpu 4090 --max-prise 1", "usage: %novita create", "--max-price"),
        ("wait x --timout 3", "usage: %novita wait", "--timeout"),
    ],
)
def test_misspelled_option_shows_the_subcommand_usage(ip, line, usage, hint):
    with pytest.raises(UsageError) as caught:
        run(ip, line)
    message = str(caught.value)
    assert usage in message and "usage: %novita [-h] COMMAND" not in message
    assert f"did you mean {hint}?" in message


# -- #11 one option set ---------------------------------------------------------------------------


def _options(parser):
    return {o for o in parser._option_string_actions if o.startswith("--") and o != "--help"}


def test_line_and_cell_create_share_one_option_set():
    from novita_notebook.notebook.parser import build_cell_parser, build_parser

    line = _options(build_parser().commands["create"])
    cell_line = _options(build_cell_parser())
    cell_keys = {"--" + key.replace("_", "-") for key in set(spec.CELL_KEYS.values()) - {"name"}}
    # flags may have a second spelling (--volumes for --volume, --idle for --idle-stop)
    flag_aliases = {alias for key in spec.CELL_KEYS.values() for alias in _option(key).flag_aliases}
    main_flags = {_option(key).flag for key in set(spec.CELL_KEYS.values()) - {"name"}}
    assert line == cell_line
    assert line - flag_aliases == main_flags
    assert {flag.removeprefix("--") for flag in main_flags} <= {
        key.replace("_", "-") for key in spec.CELL_KEYS
    } | {c.removeprefix("--") for c in cell_keys}
    assert "--timeout" in line


def _option(name):
    from novita_notebook.notebook.parser import CREATE_FLAGS

    return next(option for option in CREATE_FLAGS if option.name == name)


def test_line_create_takes_timeout_and_passes_it_to_the_wait(ip, client, capsys):
    assert run(ip, 'create to-1 --gpu "RTX 4090" --wait --timeout 0.001') is None
    err = capsys.readouterr().err
    assert "TimeoutError" in err and "to-1" in err
    assert client.instance("to-1").name == "to-1"


def test_line_create_refuses_a_zero_timeout_before_creating(ip, sandbox, capsys):
    with pytest.raises(UsageError, match="--timeout: must be a positive duration"):
        run(ip, 'create to-2 --gpu "RTX 4090" --wait --timeout 0')
    assert not any(r["path"].endswith("/gpu/instance/create") for r in sandbox.requests())


# -- #12 Ctrl-C during create --wait -------------------------------------------------------------


def test_interrupted_create_wait_prints_one_resume_message_last(ip, client, monkeypatch, capsys):
    """Ctrl-C cannot come from the sandbox: the second progress update raises it, inside the
    library's real wait (so the library's own interrupt handling runs too)."""
    from novita_notebook.notebook.progress import WaitProgress

    events: list[tuple[str, str]] = []
    original_update, original_finish = WaitProgress.update, WaitProgress.finish

    def update(self, *args):
        events.append(("update", capsys.readouterr().err))
        if len(events) == 2:
            raise KeyboardInterrupt
        original_update(self, *args)

    def finish(self):
        events.append(("finish", capsys.readouterr().err))
        original_finish(self)

    monkeypatch.setattr(WaitProgress, "update", update)
    monkeypatch.setattr(WaitProgress, "finish", finish)
    assert run(ip, 'create cc-1 --gpu "RTX 4090" --wait') is None
    err = capsys.readouterr().err
    assert [kind for kind, _ in events] == ["update", "update", "finish"]
    assert all("Stopped waiting" not in seen for _, seen in events)  # nothing before finish
    assert err.count("Stopped waiting") == 1 and err.count("Resume with") == 1
    assert "%novita wait cc-1" in err and "novita.wait(" not in err
    assert err.strip().splitlines()[-1].startswith("Stopped waiting; cc-1")
    assert client.wait("cc-1", timeout=30, progress=False).status == "running"


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ("--stop-after 1h", "It is guarded (stop at "),
        ("", "It is not guarded: %novita guard cc-g --stop-after 2h"),
    ],
)
def test_interrupted_create_says_whether_what_exists_is_guarded(
    ip, client, monkeypatch, capsys, flags, words
):
    from novita_notebook.notebook.progress import WaitProgress

    def update(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(WaitProgress, "update", update)
    name = "cc-g"
    assert run(ip, f'create {name} --gpu "RTX 4090" --wait {flags}') is None
    err = capsys.readouterr().err
    assert words in err and f"%novita delete {name}" in err
    assert err.strip().splitlines()[-1].startswith(f"Stopped waiting; {name}")


def test_interrupted_wait_prints_one_message(ip, client, monkeypatch, capsys):
    from novita_notebook.notebook.progress import WaitProgress

    run(ip, 'create cc-2 --gpu "RTX 4090"')

    def update(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(WaitProgress, "update", update)
    found = run(ip, "wait cc-2")
    err = capsys.readouterr().err
    assert isinstance(found, Instance) and found.name == "cc-2"
    assert err.count("Stopped waiting") == 1 and "%novita wait cc-2" in err


# -- #16 one wording for money -------------------------------------------------------------------


@pytest.mark.parametrize(
    "line", ["products --max-price cheap", "create m-1 --gpu 4090 --max-price x"]
)
def test_price_mistakes_use_the_one_money_rule(ip, line):
    with pytest.raises(UsageError) as caught:
        run(ip, line)
    assert validation.MONEY_RULE in str(caught.value)
    assert "(e.g. 0.5))" not in str(caught.value) and "USD per hour" not in str(caught.value)


# -- #18 one panel per session -------------------------------------------------------------------


def test_watch_replaces_the_previous_panel_and_stops_its_watcher(ip, magics):
    first = run(ip, "watch --interval 0.05")
    old_watcher = first.watcher
    assert old_watcher is not None and old_watcher.running
    second = run(ip, "watch --interval 0.05")
    try:
        assert first.watcher is None and not old_watcher.running
        assert second.watcher is not None and second.watcher.running
        assert magics.panels == [second]
    finally:
        second.stop()


def test_watch_keep_leaves_both_running(ip, magics):
    first = run(ip, "watch --interval 0.05")
    second = run(ip, "watch --interval 0.05 --keep")
    try:
        assert first.watcher is not None and first.watcher.running
        assert magics.panels == [first, second]
    finally:
        first.stop()
        second.stop()


def test_background_create_panel_shows_the_new_instance_at_once(ip):
    panel = run(ip, 'create bg-2 --gpu "RTX 4090" --background')
    try:
        assert "bg-2" in {i.name for i in panel.states.values()}
        assert "1 live ·" in repr(panel)  # #17: not "0 live" before the first poll
    finally:
        panel.stop()


# -- #21 empty mine ------------------------------------------------------------------------------


def test_empty_mine_shows_a_sentence_and_stays_a_frame(ip, capsys):
    result = ip.run_cell("%novita mine")
    out = capsys.readouterr().out
    assert "the ledger is empty" in out
    assert "Empty DataFrame" not in out and "Columns" not in out
    assert "the ledger is empty" in result.result._repr_html_()
    mine = result.result  # what `mine = %novita mine` gets: still a frame to filter
    assert len(mine[mine["status"] != "removed"]) == 0
    assert "Empty DataFrame" in repr(mine[mine["status"] != "removed"])  # derived: plain


# -- #7 instances columns ------------------------------------------------------------------------


def test_instances_leaves_out_columns_the_list_view_cannot_fill(ip, client):
    run(ip, 'create col-1 --gpu "RTX 4090" --wait')
    frame = run(ip, "instances")
    assert list(frame["name"]) == ["col-1"]
    for column in ("started_at", "ssh_command", "jupyter_url"):
        assert column not in frame.columns
    # Made here, so the ledger knows when: the columns are kept and filled.
    assert frame["created_at"].notna().all() and frame["age"].notna().all()
    client.ledger.clear()  # now nothing knows when it was made
    frame = run(ip, "instances")
    assert "created_at" not in frame.columns and "age" not in frame.columns
    assert list(frame["name"]) == ["col-1"]


# -- wait --timeout 0 ----------------------------------------------------------------------------


def test_wait_timeout_zero_fails_before_drawing_or_calling(
    ip, client, sandbox, monkeypatch, capsys
):
    from novita_notebook.notebook.progress import WaitProgress

    drawn = []
    monkeypatch.setattr(WaitProgress, "display", lambda self: drawn.append(self) or self)
    before = len(sandbox.requests())
    with pytest.raises(UsageError) as caught:
        run(ip, "wait anything --timeout 0")
    assert "usage: %novita wait" in str(caught.value)
    assert "--timeout: must be a positive duration" in str(caught.value)
    assert drawn == []
    assert len(sandbox.requests()) == before


@pytest.mark.parametrize("line", ["watch --interval 0", "watch --interval nan"])
def test_watch_interval_follows_the_duration_rule(ip, magics, line):
    with pytest.raises(UsageError, match="--interval: must be a"):
        run(ip, line)
    assert magics.panels == []


def test_poll_interval_option_follows_the_duration_rule(magics):
    from traitlets import TraitError

    with pytest.raises(TraitError, match="poll_interval: must be a duration like"):
        magics.poll_interval = float("nan")
    magics.poll_interval = 0.5
    assert magics.poll_interval == 0.5


def test_wait_until_lists_the_library_targets(ip):
    with pytest.raises(UsageError) as caught:
        run(ip, "wait x --until up")
    assert "usage: %novita wait" in str(caught.value)
    for target in validation.WAIT_TARGETS:
        assert target in str(caught.value)


def test_watch_without_interval_polls_at_the_configured_poll_interval(ip, magics):
    ip.run_line_magic("config", "NovitaMagics.poll_interval = 0.07")
    panel = run(ip, "watch")
    try:
        assert panel.watcher.interval == pytest.approx(0.07)
    finally:
        panel.stop()


def test_create_wait_until_and_unique_name_in_both_forms(ip, client, sandbox, capsys):
    with pytest.raises(UsageError, match="reachable"):
        run(ip, 'create u-1 --gpu "RTX 4090" --wait --wait-until up')
    assert cell(ip, "create", "name: u-1\ngpu: RTX 4090\nwait_until: up") is None
    assert "wait_until" in capsys.readouterr().err
    assert not any(r["path"].endswith("/gpu/instance/create") for r in sandbox.requests())
    made = cell(ip, "create --unique-name", "name: u-1\ngpu: RTX 4090")
    assert made.name.startswith("u-1-") and made.name != "u-1"
