"""The connection card of one instance as a widget, with Refresh / Start / Stop / Delete
buttons that follow its state (delete asks first); ``%load_ext`` displays bound Instances so.
"""

from __future__ import annotations

from typing import Any

from .. import html, views
from ..errors import NovitaError
from ..models import GONE_STATUSES, Instance
from ..vocabulary import status_word
from . import display as _display
from .display import Displayable, error_html

#: Phases (models.phase_of) in which each action makes sense; a button is disabled elsewhere.
_ACTION_PHASES = {
    "start": frozenset({"stopped", "failed"}),
    "stop": frozenset({"provisioning", "starting", "running"}),
}


def allowed(action: str, instance: Instance | None) -> bool:
    """Whether ``action`` (start, stop, delete) makes sense for ``instance`` now: Start on a
    stopped one, Stop on one that runs or is on its way, Delete on anything not gone."""
    if instance is None:
        return False
    if action == "delete":
        return instance.status not in GONE_STATUSES
    if instance.status in GONE_STATUSES:
        return False
    return instance.phase in _ACTION_PHASES.get(action, frozenset())


def done_line(verb: str, instance: Instance) -> str:
    """What a button did, in one line: ``Stop: demo-1 is now stopping.``"""
    word = status_word(instance.status, failed=instance.phase == "failed")
    return f"{verb.capitalize()}: {instance.name} is now {word}."


class InstanceCard(Displayable):
    """The connection card of one instance with Refresh / Start / Stop / Delete buttons (delete
    asks for confirmation); the buttons that make no sense in its state are disabled."""

    def __init__(self, instance: Instance, client: Any = None) -> None:
        self.instance = instance
        self.client = client if client is not None else getattr(instance, "_client", None)
        self.confirming = False
        widgets = _display.ipywidgets_module()
        if widgets is None:
            return
        self.card = widgets.HTML(views.instance_card(instance))
        self.message = widgets.HTML("")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.start_button = widgets.Button(description="Start", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop")
        self.delete_button = widgets.Button(
            description="Delete", icon="trash", button_style="danger"
        )
        self.confirm_button = widgets.Button(description="Confirm delete", button_style="danger")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_box = widgets.HBox([self.confirm_button, self.cancel_button])
        self.confirm_box.layout.display = "none"
        self.refresh_button.on_click(lambda _: self.refresh())
        self.start_button.on_click(lambda _: self._act("start"))
        self.stop_button.on_click(lambda _: self._act("stop"))
        self.delete_button.on_click(lambda _: self._ask_delete())
        self.confirm_button.on_click(lambda _: self._act("delete"))
        self.cancel_button.on_click(lambda _: self._cancel_delete())
        buttons = [self.refresh_button, self.start_button, self.stop_button, self.delete_button]
        if self.client is None:  # an unbound Instance can only be shown
            buttons = []
        self.widget = widgets.VBox(
            [self.card, widgets.HBox(buttons), self.confirm_box, self.message]
        )
        self._follow_state()

    def _follow_state(self) -> None:
        """Enable only what makes sense now (no Start on a running instance, no Delete on a
        deleted one)."""
        if self.widget is None:
            return
        self.start_button.disabled = not allowed("start", self.instance)
        self.stop_button.disabled = not allowed("stop", self.instance)
        self.delete_button.disabled = not allowed("delete", self.instance)
        if self.delete_button.disabled:
            self.delete_button.button_style = ""  # no active red on something gone
            self.confirm_box.layout.display = "none"
            self.confirming = False
        else:
            self.delete_button.button_style = "danger"

    def refresh(self) -> Instance:
        """Fetch the instance again and redraw the card."""
        if self.client is None:
            return self.instance
        try:
            fresh = self.client.instance(self.instance.id)
        except NovitaError as error:
            self._say(error_html(error))
            return self.instance
        fresh.fallback_report = getattr(self.instance, "fallback_report", None)
        self.instance = fresh
        if self.widget is not None:
            self.card.value = views.instance_card(fresh)
            self._follow_state()
        self.refresh_snapshot(force=True)
        return fresh

    def _say(self, markup: str) -> None:
        if self.widget is not None:
            self.message.value = markup

    def _ask_delete(self) -> None:
        self.confirming = True
        self.confirm_box.layout.display = ""
        self._say(html.text(f"Delete {self.instance.name}? Its disk is lost. Confirm or cancel."))

    def _cancel_delete(self) -> None:
        self.confirming = False
        self.confirm_box.layout.display = "none"
        self._say("Delete cancelled.")

    def _act(self, verb: str) -> None:
        if verb == "delete":
            if not self.confirming:
                return
            self.confirming = False
            self.confirm_box.layout.display = "none"
        try:
            getattr(self.client, verb)(self.instance.id)
        except NovitaError as error:
            self._say(error_html(error))
            return
        fresh = self.refresh()
        self._say(html.text(done_line(verb, fresh)))

    def _repr_html_(self) -> str:
        return views.instance_card(self.instance)

    def __repr__(self) -> str:
        return views.instance_text(self.instance)


def display_instance(instance: Instance) -> None:
    """How a displayed Instance shows (registered by ``%load_ext``): the card with buttons
    when it is bound to a client and ipywidgets is there, its HTML card otherwise; nothing
    when a command of the same cell already showed it or said what happened in a line."""
    if _display.already_shown(instance):
        return
    if _display.ipywidgets_module() is None or getattr(instance, "_client", None) is None:
        from IPython.display import display

        bundle = {"text/plain": repr(instance), "text/html": views.instance_card(instance)}
        display(bundle, raw=True)
        return
    _display.show(InstanceCard(instance))


def instance_mimebundle(instance: Instance) -> dict[str, Any] | None:
    """The card's mimebundle (with the widget view when ipywidgets is there and the instance
    is bound); None (the Instance's own HTML card) otherwise."""
    if _display.ipywidgets_module() is None or getattr(instance, "_client", None) is None:
        return None
    return InstanceCard(instance)._repr_mimebundle_()
