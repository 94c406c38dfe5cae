"""%novita / %%novita through a real IPython shell against the sandbox over HTTP: every
subcommand, --help, bad flags (UsageError, shell alive), return values, $var expansion."""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.core.error import UsageError

from novita_notebook.errors import NovitaError, ValidationError
from novita_notebook.models import Instance

SUBCOMMANDS = (
    "products",
    "browse",
    "regions",
    "instances",
    "templates",
    "create",
    "wait",
    "watch",
    "start",
    "stop",
    "restart",
    "delete",
    "mine",
    "cleanup",
    "config",
    "sandbox",
)


def run(ip, line):
    return ip.run_line_magic("novita", line)


def make(ip, client, name="m-1"):
    instance = run(ip, f'create {name} --gpu "RTX 4090" --wait')
    assert isinstance(instance, Instance), "create --wait returns the Instance"
    return instance


def test_help_prints_and_returns_none(ip, capsys):
    assert run(ip, "--help") is None
    out = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in out


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(ip, capsys, command):
    assert run(ip, f"{command} --help") is None
    assert f"usage: %novita {command}" in capsys.readouterr().out


def test_empty_line_prints_help(ip, capsys):
    assert run(ip, "") is None
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize(
    "line",
    ["products --bogus", "frobnicate", "create --gpu 4090", "watch --interval soon", 'create "x'],
)
def test_bad_input_raises_usage_error_and_shell_survives(ip, line):
    with pytest.raises(UsageError):
        run(ip, line)
    result = ip.run_cell(f"%novita {line}")
    assert isinstance(result.error_in_exec, UsageError)
    assert ip.run_cell("survivor = 40 + 2").success
    assert ip.user_ns["survivor"] == 42


def test_products_returns_frame_filtered_and_underscore_holds_it(ip):
    result = ip.run_cell("%novita products --gpu 4090 --available", store_history=True)
    frame = result.result
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0
    assert frame["product"].str.contains("4090").all()
    assert frame["available"].all()
    assert ip.user_ns["_"] is frame


def test_products_var_and_expr_expansion(ip):
    ip.user_ns["wanted"] = "A100"
    ip.run_cell("df = %novita products --gpu $wanted")
    frame = ip.user_ns["df"]
    assert len(frame) > 0 and frame["product"].str.contains("A100").all()
    ip.user_ns["regions_list"] = ["AS-SGP-02"]
    ip.run_cell("df2 = %novita products --region {regions_list[0]}")
    assert set(ip.user_ns["df2"]["region"]) == {"AS-SGP-02"}


def test_products_max_price_and_billing(ip):
    frame = run(ip, "products --max-price 0.5")
    assert len(frame) > 0 and (frame["price_per_hour"] <= 0.5).all()
    run(ip, "products --billing spot")  # accepted alias path
    with pytest.raises(UsageError):
        run(ip, "products --gpu-num two")


def test_products_bad_values_name_the_flag_and_its_rule(ip):
    with pytest.raises(UsageError) as caught:
        run(ip, "products --max-price cheap")
    assert "--max-price: must be a positive number of USD per GPU-hour" in str(caught.value)
    assert "usage: %novita products" in str(caught.value)


def test_browse_returns_product_browser(ip):
    from novita_notebook.notebook.widgets import ProductBrowser

    browser = run(ip, "browse --gpu A100 --region EU-DE-01")
    assert isinstance(browser, ProductBrowser)
    assert set(browser.frame["region"]) == {"EU-DE-01"}
    assert browser.frame["product"].str.contains("A100").all()


def test_regions_templates_instances(ip):
    regions = run(ip, "regions")
    assert len(regions) == 8
    templates = run(ip, "templates")
    assert len(templates) > 0
    instances = run(ip, "instances")
    assert len(instances) == 0


def test_create_wait_lifecycle_and_sandbox_state(ip, client, sandbox, capsys):
    instance = make(ip, client, "life-1")
    assert instance.status == "running"
    assert instance.fallback_report is not None
    out = capsys.readouterr().out
    assert "life-1" in out  # the progress line and the fallback report were shown
    listed = run(ip, "instances --status running")
    assert list(listed["name"]) == ["life-1"]

    run(ip, "stop life-1")
    assert client.wait("life-1", until="exited", timeout=30, progress=False).status == "exited"
    run(ip, "start life-1")
    assert run(ip, "wait life-1 --until running --timeout 30").status == "running"
    run(ip, "restart life-1")
    assert client.wait("life-1", until="running", timeout=30, progress=False).status == "running"
    run(ip, "delete life-1")
    gone = client.wait(instance.id, until="removed", timeout=30, progress=False)
    assert gone.status == "removed"
    assert "Delete requested for life-1" in capsys.readouterr().out
    # The sandbox really received the lifecycle calls over HTTP.
    paths = [r["path"] for r in sandbox.requests()]
    for action in ("create", "stop", "start", "restart", "delete"):
        assert any(p.endswith(f"/gpu/instance/{action}") for p in paths), action


def test_create_without_wait_returns_at_once(ip, client):
    instance = run(
        ip, 'create quick-1 --gpu "RTX 4090" --region CN-HK-01 --envs "A=1" --ports 8888/http'
    )
    assert isinstance(instance, Instance)
    assert instance.name == "quick-1"
    fresh = client.instance("quick-1")
    assert {e.key: e.value for e in fresh.envs}.get("A") == "1"


def test_create_unknown_gpu_is_one_short_message(ip, capsys):
    assert run(ip, 'create x --gpu "RTX 9999"') is None
    err = capsys.readouterr().err
    assert "9999" in err
    assert err.count("\n") <= 4 and "Traceback" not in err
    assert ip.run_cell("ok = 1").success


def test_short_errors_off_raises(ip, magics):
    magics.short_errors = False
    with pytest.raises(NovitaError):
        run(ip, 'create x --gpu "RTX 9999"')


def test_bad_name_names_the_field(ip, capsys):
    assert run(ip, "create bad_name! --gpu 4090") is None
    err = capsys.readouterr().err
    assert "ValidationError" in err and "name" in err


def test_cell_form_create_with_expansion(ip, client):
    ip.user_ns["box"] = "cell-1"
    ip.user_ns["settings"] = {"region": "AS-SGP-02"}
    result = ip.run_cell(
        "%%novita create\n"
        "name: $box\n"
        "gpu: RTX 4090\n"
        "region: {settings['region']}\n"
        "envs: MODE=train, SEED=3\n"
        "wait: yes\n"
    )
    instance = result.result
    assert isinstance(instance, Instance) and instance.name == "cell-1"
    assert instance.status == "running"
    fresh = client.instance("cell-1")
    envs = {e.key: e.value for e in fresh.envs}
    assert envs["MODE"] == "train" and envs["SEED"] == "3"


def test_cell_form_errors(ip, capsys):
    with pytest.raises(UsageError):
        ip.run_cell_magic("novita", "products", "name: x")
    with pytest.raises(UsageError):
        ip.run_cell_magic("novita", "create --bogus", "name: x\ngpu: 4090")
    assert ip.run_cell_magic("novita", "create", "name: x\ngpu: 4090\ncolour: red") is None
    assert "colour" in capsys.readouterr().err


def test_watch_returns_panel_fed_by_watcher(ip, client):
    from novita_notebook.notebook.widgets import InstancePanel

    make(ip, client, "w-1")
    panel = run(ip, "watch w-1 --interval 0.05")
    assert isinstance(panel, InstancePanel)
    try:
        assert panel.watcher is not None
        panel.watcher.wait_for(lambda w: "w-1" in {i.name for i in w.latest.values()}, timeout=20)
        deadline_names = {i.name for i in panel.states.values()}
        assert "w-1" in deadline_names
    finally:
        panel.stop()


def test_create_background_returns_panel(ip, client):
    from novita_notebook.notebook.widgets import InstancePanel

    panel = run(ip, 'create bg-1 --gpu "RTX 4090" --background')
    try:
        assert isinstance(panel, InstancePanel)
        assert client.instance("bg-1").name == "bg-1"
    finally:
        panel.stop()


def test_mine_and_cleanup(ip, client, capsys):
    make(ip, client, "mine-1")
    mine = run(ip, "mine")
    assert "mine-1" in set(mine["name"])
    plan = run(ip, "cleanup")
    assert "Preview only" in capsys.readouterr().out
    assert client.instance("mine-1").status == "running"  # the preview touched nothing
    assert list(plan["with --stop"]) == ["stop"] and list(plan["with --delete"]) == ["delete"]
    run(ip, "cleanup --delete")
    gone = client.wait("mine-1", until="removed", timeout=30, progress=False)
    assert gone.status == "removed"


def test_config_masks_key_and_shows_magic_options(ip, client, sandbox):
    settings = run(ip, "config")
    assert sandbox.api_key not in repr(settings)
    assert settings["api_key"] and settings["api_key"] != sandbox.api_key
    assert settings["magics"]["short_errors"] is True


def test_percent_config_sets_options(ip, magics):
    ip.run_line_magic("config", "NovitaMagics.default_region = 'CN-HK-01'")
    ip.run_line_magic("config", "NovitaMagics.poll_interval = 0.5")
    assert magics.default_region == "CN-HK-01"
    assert magics.poll_interval == 0.5


def test_percent_config_spend_limit_applies_to_the_live_session(ip, magics, client, capsys):
    first = run(ip, 'create budget-1 --gpu "RTX 4090"')
    limit = first.price_per_hour * 1.5
    ip.run_line_magic("config", f"NovitaMagics.spend_limit_per_hour = {limit}")
    assert client.config.spend_limit_per_hour == pytest.approx(limit)
    assert run(ip, 'create budget-2 --gpu "RTX 4090"') is None
    err = capsys.readouterr().err
    assert err.startswith("BudgetExceededError:") and "budget" in err
    assert "%config NovitaMagics.spend_limit_per_hour" in err  # the hint in magic terms
    magics.spend_limit_per_hour = None  # back to the client's own setting
    assert client.config.spend_limit_per_hour is None


def test_the_old_spend_limit_trait_still_works_with_a_warning(ip, magics, client):
    with pytest.warns(DeprecationWarning, match="spend_limit_per_hour"):
        ip.run_line_magic("config", "NovitaMagics.budget_per_hour = 3")
    assert magics.spend_limit_per_hour == 3.0 and client.config.spend_limit_per_hour == 3.0
    magics.spend_limit_per_hour = None


def test_percent_config_rejects_bad_values(ip, magics):
    from traitlets import TraitError

    with pytest.raises(TraitError, match="billing"):
        magics.billing = "free"
    with pytest.raises(TraitError, match="poll_interval"):
        magics.poll_interval = -1.0
    magics.billing = "spot"
    assert magics.billing == "spot"


def test_default_region_is_used_by_create(ip, magics, client):
    magics.default_region = "CN-HK-01"
    instance = run(ip, 'create reg-1 --gpu "RTX 4090"')
    assert instance.fallback_report.regions_tried[0] == "CN-HK-01"


def test_no_key_suggests_sandbox(shell, magics, capsys):
    magics.client = None
    assert shell.run_line_magic("novita", "products") is None
    err = capsys.readouterr().err
    assert "%novita sandbox start" in err
    assert "Traceback" not in err


def test_sandbox_start_status_stop_and_auto_sandbox(shell, magics, capsys):
    magics.client = None
    shell.run_line_magic("novita", "sandbox start --speed 200")
    out = capsys.readouterr().out
    assert "Sandbox running at http://127.0.0.1:" in out
    assert "(8 regions, " in out and "This session now talks to it." in out
    status = shell.run_line_magic("novita", "sandbox status")
    assert status["running"] and status["session_uses_sandbox"]
    regions = shell.run_line_magic("novita", "regions")
    assert len(regions) == 8
    settings = shell.run_line_magic("novita", "config")
    assert settings["session"] == "sandbox"
    shell.run_line_magic("novita", "sandbox stop")
    assert "stopped" in capsys.readouterr().out
    assert shell.run_line_magic("novita", "sandbox status")["running"] is False

    magics.auto_sandbox = True
    frame = shell.run_line_magic("novita", "products --gpu 4090")
    assert len(frame) > 0
    assert "Sandbox running at" in capsys.readouterr().out
    magics.shutdown()


def test_config_reload_reads_environment(shell, magics, sandbox, monkeypatch, capsys):
    monkeypatch.setenv("NOVITA_API_KEY", sandbox.api_key)
    monkeypatch.setenv("NOVITA_API_URL", sandbox.url)
    settings = shell.run_line_magic("novita", "config --reload")
    assert settings["session"] == "api"
    assert sandbox.url in settings["api_url"]
    assert sandbox.api_key not in capsys.readouterr().out


def test_unload_and_reload_extension(shell, magics):
    shell.run_line_magic("reload_ext", "novita_notebook")
    from novita_notebook.notebook.magics import get_magics

    assert get_magics(shell) is not None
    assert "novita" in shell.magics_manager.magics["line"]


def test_validation_error_is_novita_error():
    assert issubclass(ValidationError, NovitaError)


def test_ctrl_c_stops_waiting_not_the_instance(ip, client, monkeypatch, capsys):
    """Ctrl-C cannot be produced by the sandbox, so the wait is made to raise it."""
    instance = run(ip, 'create ctrl-c --gpu "RTX 4090"')

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(client, "wait", interrupted)
    returned = run(ip, "wait ctrl-c")
    assert returned.id == instance.id
    assert "keeps going" in capsys.readouterr().err
    monkeypatch.undo()
    assert client.wait(instance.id, timeout=30, progress=False).status == "running"


def test_auto_sandbox_from_environment_at_load(shell, monkeypatch):
    from novita_notebook.notebook.magics import get_magics

    monkeypatch.setenv("NOVITA_AUTO_SANDBOX", "1")
    shell.run_line_magic("reload_ext", "novita_notebook")
    try:
        assert get_magics(shell).auto_sandbox is True
    finally:
        get_magics(shell).auto_sandbox = False
