"""A Jupyter kernelspec "Novita: NAME": picked from the kernel menu, the whole notebook runs
on the instance (Jupyter starts ``remote/kernel_launcher.py``, which forwards to an ipykernel
there). Installed with jupyter_client's KernelSpecManager, for the user or under a prefix.

What happens when the instance stops is in the spec's metadata and in what the kernel then
answers: its variables are gone, every cell says so, and a restart after the instance runs
again gives a fresh kernel there.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ValidationError

__all__ = ["install_kernelspec", "remove_kernelspec", "kernel_name_for", "STOP_NOTE"]

STOP_NOTE = (
    "Runs every cell on the Novita instance over SSH. The instance keeps billing while this "
    "kernel is open. If the instance stops, the kernel and its variables end with it (files "
    "on its disk stay); cells then answer with that note until the instance runs again and "
    "the kernel is restarted."
)


def kernel_name_for(name: str) -> str:
    """``novita-<name>``: lowercase letters, digits, - and _ (Jupyter's rule for names)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-") or "instance"
    return f"novita-{slug}"


def spec_for(instance_id: str, name: str, api_url: str, python: str) -> dict[str, Any]:
    return {
        "argv": [
            sys.executable, "-m", "novita_notebook.remote.kernel_launcher",
            "--instance", instance_id, "--api-url", api_url, "--python", python,
            "-f", "{connection_file}",
        ],
        "display_name": f"Novita: {name}",
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {
            "novita": {"instance_id": instance_id, "name": name, "api_url": api_url,
                       "python": python, "note": STOP_NOTE},
            "debugger": False,
        },
    }  # fmt: skip


def install_kernelspec(
    instance_id: str,
    name: str,
    api_url: str,
    *,
    python: str = "python3",
    user: bool = True,
    prefix: str | None = None,
) -> str:
    """Install (or replace) the kernelspec; returns its kernel name. ``prefix`` installs
    under ``PREFIX/share/jupyter/kernels`` (a virtual environment's, say) instead of the
    user's kernels. The API key is not written: the launcher reads it from the environment
    or .env of the Jupyter server that starts it."""
    if not isinstance(python, str) or not python.strip():
        raise ValidationError("python must be the name or path of a Python", field="python")
    from jupyter_client.kernelspec import KernelSpecManager

    kernel = kernel_name_for(name or instance_id)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "kernel.json").write_text(
            json.dumps(spec_for(instance_id, name or instance_id, api_url, python), indent=1),
            encoding="utf-8",
        )
        KernelSpecManager().install_kernel_spec(
            folder, kernel, user=user and prefix is None, prefix=prefix
        )
    return kernel


def remove_kernelspec(name: str, prefix: str | None = None) -> bool:
    """Remove the "Novita: NAME" kernelspec; True if there was one."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    if prefix is not None:
        manager.kernel_dirs = [str(Path(prefix, "share", "jupyter", "kernels"))]
    try:
        manager.remove_kernel_spec(kernel_name_for(name))
    except NoSuchKernel:
        return False
    return True
