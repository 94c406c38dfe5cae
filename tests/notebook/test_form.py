"""The create form's button follows its state: off while a field is wrong (back once fixed)
and while a create is on its way, so one click makes one instance."""

from __future__ import annotations

from novita_notebook.notebook.widgets import CreateForm


def test_create_is_off_on_a_validation_error_and_back_once_fixed(client):
    form = CreateForm(client, gpu="RTX 4090")
    form.fields["name"].value = "bad name!"
    form.create_button.click()
    assert form.instance is None and form.create_button.disabled
    form.fields["name"].value = "good-1"
    assert not form.create_button.disabled


def test_create_is_off_while_the_create_runs(client, monkeypatch):
    form = CreateForm(client, name="busy-1", gpu="RTX 4090")
    form.wait_box.value = False
    seen = []
    create = client.create

    def watching(*args, **kwargs):
        seen.append((form.create_button.disabled, form.create_button.description))
        form.submit()  # a second click that arrives meanwhile: ignored
        return create(*args, **kwargs)

    monkeypatch.setattr(client, "create", watching)
    form.create_button.click()
    assert seen == [(True, "Creating…")]  # one create, button off during it
    assert form.instance is not None and "busy-1 is creating" in form.status.value
    assert not form.create_button.disabled and form.create_button.description == "Create"
