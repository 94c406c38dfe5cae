"""The connection card of one instance as a widget, with Refresh / Start / Stop / Delete
buttons (delete asks first); ``%load_ext`` displays bound Instances this way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import html
from ..errors import NovitaError
from ..models import Instance
from . import display as _display
from .display import Displayable, error_html

if TYPE_CHECKING:  # pragma: no cover
    from ..protocols import NovitaClient


class InstanceCard(Displayable):
    """The connection card of one instance with Refresh / Start / Stop / Delete buttons (delete
    asks for confirmation). ``%load_ext`` makes bound Instances display this way."""

    def __init__(self, instance: Instance, client: NovitaClient | None = None) -> None:
        self.instance = instance
        self.client = client if client is not None else getattr(instance, "_client", None)
        self.confirming = False
        widgets = _display.ipywidgets_module()
        if widgets is None:
            return
        self.card = widgets.HTML(html.instance_card(instance))
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
            self.card.value = html.instance_card(fresh)
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
        self.refresh()
        self._say(html.text(f"{verb.capitalize()} requested for {self.instance.name}."))

    def _repr_html_(self) -> str:
        return html.instance_card(self.instance)

    def __repr__(self) -> str:
        return repr(self.instance)


def instance_mimebundle(instance: Instance) -> dict[str, Any] | None:
    """IPython mimebundle printer for Instances (registered by %load_ext): the card with
    buttons when ipywidgets is there; None (the Instance's own HTML card) otherwise."""
    if _display.ipywidgets_module() is None or getattr(instance, "_client", None) is None:
        return None
    return InstanceCard(instance)._repr_mimebundle_()
