"""The notebook widgets in one import: product browser, instance panel and card, create form
and wait progress. ipywidgets is imported lazily; without it each object shows as HTML.
"""

from __future__ import annotations

from .browser import ProductBrowser
from .card import InstanceCard, instance_mimebundle
from .display import Displayable, ipywidgets_module
from .form import CreateForm
from .panel import InstancePanel, spend_detail, spend_of
from .progress import WaitProgress

__all__ = [
    "CreateForm",
    "Displayable",
    "InstanceCard",
    "InstancePanel",
    "ProductBrowser",
    "WaitProgress",
    "instance_mimebundle",
    "ipywidgets_module",
    "spend_detail",
    "spend_of",
]
