"""An offline, faithful Novita GPU cloud on loopback (the "sandbox") for demos and tests.
Independent of the client side: it imports nothing else from novita_notebook.
"""

from .app import DEFAULT_API_KEY, Sandbox

__all__ = ["DEFAULT_API_KEY", "Sandbox"]
