"""A table of bad inputs to every public entry point: each gets a ValidationError that names
the field (and says the rule) before a single HTTP request reaches the sandbox.
create()'s own rules live in tests/provisioning/test_create_validation.py (not repeated here).
"""

from __future__ import annotations

import pytest

from novita_notebook import Novita
from novita_notebook.errors import NovitaError, ValidationError
from novita_notebook.waiting import Backoff
from novita_notebook.webhooks import Notifier, Receiver, sign, verify_signature

SECRET = "a-long-enough-webhook-secret"
IMAGE = "ubuntu:22.04"

# (label, call taking the client, field the error must name)
CLIENT_CASES = [
    ("products gpu type", lambda c: c.products(gpu=5), "gpu"),
    ("products gpu_num 0", lambda c: c.products(gpu_num=0), "gpu_num"),
    ("products gpu_num 9", lambda c: c.products(gpu_num=9), "gpu_num"),
    ("products gpu_num text", lambda c: c.products(gpu_num="2"), "gpu_num"),
    ("products billing", lambda c: c.products(billing="hourly"), "billing"),
    ("products max_price negative", lambda c: c.products(max_price=-1), "max_price"),
    ("products max_price text", lambda c: c.products(max_price="cheap"), "max_price"),
    ("products available text", lambda c: c.products(available="yes"), "available"),
    ("products region type", lambda c: c.products(region=3), "region"),
    ("regions refresh", lambda c: c.regions(refresh="no"), "refresh"),
    ("instances unknown status", lambda c: c.instances(status="sleeping"), "status"),
    ("instances status type", lambda c: c.instances(status=5), "status"),
    ("templates name type", lambda c: c.templates(name=5), "name"),
    ("instance empty", lambda c: c.instance(""), "id_or_name"),
    ("instance number", lambda c: c.instance(42), "id_or_name"),
    ("instance None", lambda c: c.instance(None), "id_or_name"),
    ("start empty", lambda c: c.start(""), "id_or_name"),
    ("stop number", lambda c: c.stop(7), "id_or_name"),
    ("restart None", lambda c: c.restart(None), "id_or_name"),
    ("delete blank", lambda c: c.delete("   "), "id_or_name"),
    ("edit port out of range", lambda c: c.edit("x", ports=[70000]), "ports"),
    ("edit port type", lambda c: c.edit("x", ports=["80/udp"]), "ports"),
    ("edit reserved port", lambda c: c.edit("x", ports=[2222]), "ports"),
    ("edit disk zero", lambda c: c.edit("x", expand_root_disk_gb=0), "expand_root_disk_gb"),
    ("edit disk text", lambda c: c.edit("x", expand_root_disk_gb="10"), "expand_root_disk_gb"),
    ("edit nothing", lambda c: c.edit("x"), "ports"),
    ("edit empty id", lambda c: c.edit("", ports=[80]), "id_or_name"),
    ("create_many zero", lambda c: c.create_many(0, gpu="4090"), "specs"),
    ("create_many too many", lambda c: c.create_many(501, gpu="4090"), "specs"),
    ("create_many text", lambda c: c.create_many("3", gpu="4090"), "specs"),
    ("create_many spec type", lambda c: c.create_many([5], gpu="4090"), "specs[0]"),
    (
        "create_many duplicate names",
        lambda c: c.create_many([{"name": "a-1"}, {"name": "a-1"}], gpu="4090"),
        "name",
    ),
    (
        "create_many bad spec field",
        lambda c: c.create_many([{"name": "a-1"}, {"name": "a 2"}], gpu="4090"),
        "name",
    ),
    (
        "create_many concurrency 0",
        lambda c: c.create_many(2, gpu="4090", concurrency=0),
        "concurrency",
    ),
    (
        "create_many concurrency 65",
        lambda c: c.create_many(2, gpu="4090", concurrency=65),
        "concurrency",
    ),
    ("create_many progress", lambda c: c.create_many(2, gpu="4090", progress=5), "progress"),
    ("wait until", lambda c: c.wait("x", until="ready"), "until"),
    ("wait timeout 0", lambda c: c.wait("x", timeout=0), "timeout"),
    ("wait timeout negative", lambda c: c.wait("x", timeout=-5), "timeout"),
    ("wait poll text", lambda c: c.wait("x", poll="fast"), "poll"),
    ("wait instance type", lambda c: c.wait(5), "instance"),
    ("wait instance empty", lambda c: c.wait(""), "instance"),
    ("watch interval 0", lambda c: c.watch(interval=0), "interval"),
    ("watch interval text", lambda c: c.watch(interval="5"), "interval"),
    ("watch page_size 0", lambda c: c.watch(page_size=0), "page_size"),
    ("watch page_size 101", lambda c: c.watch(page_size=101), "page_size"),
    ("watch callbacks", lambda c: c.watch(callbacks=[5]), "callbacks"),
    ("watch notify", lambda c: c.watch(notify=5), "notify"),
    ("watch empty list", lambda c: c.watch(instances=[]), "instances"),
    ("watch instance type", lambda c: c.watch(instances=[5]), "instances"),
    ("cleanup stop text", lambda c: c.cleanup(stop="yes"), "stop"),
    ("cleanup no action", lambda c: c.cleanup(dry_run=False), "dry_run"),
    ("cleanup stop and delete", lambda c: c.cleanup(stop=True, delete=True), "stop"),
    ("cleanup older_than", lambda c: c.cleanup(older_than="soon"), "older_than"),
    ("registry auth name", lambda c: c.create_registry_auth("", "u", "pw"), "name"),
    ("registry auth user", lambda c: c.create_registry_auth("n", "", "pw"), "username"),
    ("registry auth password", lambda c: c.create_registry_auth("n", "u", ""), "password"),
    ("registry auth long pw", lambda c: c.create_registry_auth("n", "u", "p" * 2000), "password"),
    ("delete registry auth", lambda c: c.delete_registry_auth(""), "id_or_name"),
    ("template name", lambda c: c.create_template("", IMAGE), "name"),
    ("template image", lambda c: c.create_template("t", ""), "image"),
    ("template rootfs", lambda c: c.create_template("t", IMAGE, rootfs_gb=1), "rootfs_gb"),
    ("template ports", lambda c: c.create_template("t", IMAGE, ports="80/udp"), "ports"),
    ("delete template", lambda c: c.delete_template(""), "id_or_name"),
]

# (label, call taking the sandbox, field) for constructors and module functions
STANDALONE_CASES = [
    (
        "client budget",
        lambda s: Novita(api_key="k" * 12, api_url=s.url, budget_per_hour=-1),
        "budget_per_hour",
    ),
    (
        "client retries",
        lambda s: Novita(api_key="k" * 12, api_url=s.url, max_retries=-1),
        "max_retries",
    ),
    (
        "client timeout",
        lambda s: Novita(api_key="k" * 12, api_url=s.url, timeout=(0, 5)),
        "timeout",
    ),
    (
        "client concurrency",
        lambda s: Novita(api_key="k" * 12, api_url=s.url, max_concurrency=0),
        "max_concurrency",
    ),
    (
        "client poll",
        lambda s: Novita(api_key="k" * 12, api_url=s.url, poll_interval=0),
        "poll_interval",
    ),
    (
        "client cache ttl",
        lambda s: Novita(api_key="k" * 12, api_url=s.url, cache_ttl=-1),
        "cache_ttl",
    ),
    ("client no key", lambda s: Novita(api_url=s.url, env_file=False), "api_key"),
    ("client key type", lambda s: Novita(api_key=12345, api_url=s.url), "api_key"),
    (
        "client short secret",
        lambda s: Novita(api_key="k" * 12, api_url=s.url, webhook_secret="short"),
        "webhook_secret",
    ),
    (
        "client webhook url",
        lambda s: Novita(api_key="k" * 12, api_url=s.url, webhook_url="ftp://x"),
        "webhook_url",
    ),
    ("backoff initial", lambda s: Backoff(initial=0), "initial"),
    ("backoff cap", lambda s: Backoff(initial=1, cap=0.5), "cap"),
    ("backoff factor", lambda s: Backoff(factor=0.5), "factor"),
    ("notifier url", lambda s: Notifier("ftp://x", SECRET), "url"),
    ("notifier secret", lambda s: Notifier("http://127.0.0.1:9/h", "short"), "secret"),
    ("notifier timeout", lambda s: Notifier("http://127.0.0.1:9/h", SECRET, timeout=0), "timeout"),
    (
        "notifier attempts",
        lambda s: Notifier("http://127.0.0.1:9/h", SECRET, max_attempts=0),
        "max_attempts",
    ),
    ("receiver secret", lambda s: Receiver("short"), "secret"),
    ("receiver port", lambda s: Receiver(SECRET, port=70000), "port"),
    ("receiver path", lambda s: Receiver(SECRET, path="webhook"), "path"),
    ("sign body", lambda s: sign("not bytes", SECRET), "body"),
    ("verify tolerance", lambda s: verify_signature(b"{}", {}, SECRET, tolerance=0), "tolerance"),
]


def _check(error: ValidationError, field: str) -> None:
    named = {error.field} | {name for name, _rule in error.problems}
    assert field in named or any(str(n).startswith(f"{field}[") for n in named), (
        f"the error names {named}, not {field!r}: {error}"
    )
    assert field.split("[")[0].lower() in str(error).lower(), (
        f"the message does not name {field!r}: {error}"
    )


@pytest.mark.parametrize("label, call, field", CLIENT_CASES, ids=[c[0] for c in CLIENT_CASES])
def test_bad_input_is_refused_before_any_http_call(sandbox, client, label, call, field):
    sandbox.clear_requests()
    before = client.api.requests_made
    try:
        call(client)
    except ValidationError as error:
        _check(error, field)
    except NovitaError as error:
        pytest.fail(f"{label}: {type(error).__name__} instead of ValidationError: {error}")
    else:
        pytest.fail(f"{label}: accepted")
    assert client.api.requests_made == before, f"{label}: the client sent a request"
    assert sandbox.requests() == [], f"{label}: the sandbox received {sandbox.requests()}"


@pytest.mark.parametrize(
    "label, call, field", STANDALONE_CASES, ids=[c[0] for c in STANDALONE_CASES]
)
def test_bad_construction_is_refused_before_any_http_call(sandbox, label, call, field):
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        call(sandbox)
    _check(caught.value, field)
    assert sandbox.requests() == []
