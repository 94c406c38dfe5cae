"""What ``create()`` takes, declared once: its keywords, the ``%novita create`` flags, the
``%%novita create`` cell keys, the create form's fields and the session's default billing.
The guard rules a create may set are the GUARD family's (options/guard.py).
"""

from __future__ import annotations

from ..validation import (
    MAX_COMMAND,
    MAX_GPU_NUM,
    MAX_ROOTFS_GB,
    MIN_GPU_NUM,
    MIN_ROOTFS_GB,
    WAIT_TARGETS,
)
from . import kinds
from .schema import Family, FormField, Option

__all__ = ["CREATE", "PREFER", "DEFAULT_ROOTFS_GB"]

#: Container disk when neither the call nor the template says: the first 60 GB are free.
DEFAULT_ROOTFS_GB = 60
#: How create orders its offers: cheapest anywhere, or the regions in order.
PREFER = ("price", "region")

CREATE = Family(
    "create",
    "create(): Novita.create keywords, %novita create flags and %%novita create cell keys",
    (
        Option(
            "name",
            kinds.NAME,
            "instance name: letters, digits and hyphens, unique among live instances",
            cell=True,
            form=FormField("name", "my-gpu-box"),
        ),
        Option(
            "gpu",
            kinds.text("must be a GPU name like 'RTX 4090' or '4090'", example="RTX 4090"),
            'GPU model or product, matched loosely ("4090", "RTX 4090 24GB"); None: any',
            flag="--gpu",
            cell=True,
            form=FormField("GPU", "RTX 4090"),
        ),
        Option(
            "gpu_num",
            kinds.size(MIN_GPU_NUM, MAX_GPU_NUM, example="1"),
            "GPUs per instance",
            default=1,
            flag="--gpu-num",
            cell=True,
        ),
        Option(
            "region",
            kinds.REGION,
            "the region to try first (name or cluster id)",
            flag="--region",
            cell=True,
            form=FormField("region", "any region"),
        ),
        Option(
            "regions",
            kinds.REGIONS,
            "the regions to try, in order (replaces the default order)",
            flag="--regions",
            cell=True,
            form=FormField("fallback", "AS-SGP-02, CN-HK-01"),
        ),
        Option(
            "template",
            kinds.text("must be a template id or name", example="my-template"),
            "template id or name: image, ports, envs, disk, command and registry auth",
            flag="--template",
            cell=True,
            form=FormField("template", "template id or name"),
        ),
        Option(
            "image",
            kinds.IMAGE,
            "container image (instead of a template); default: PyTorch + JupyterLab",
            flag="--image",
            cell=True,
            form=FormField("image", "registry/image:tag"),
        ),
        Option(
            "billing",
            kinds.BILLING,
            "onDemand, spot or monthly",
            default="onDemand",
            flag="--billing",
            cell=True,
            trait="billing",
        ),
        Option(
            "max_price",
            kinds.money(),
            "the most to pay, USD per GPU-hour",
            flag="--max-price",
            cell=True,
            form=FormField("max $/h", "0.50"),
        ),
        Option(
            "rootfs_gb",
            kinds.size(MIN_ROOTFS_GB, MAX_ROOTFS_GB, "GB", example="60"),
            "container disk in GB (default: the template's, else 60; fitted to the product)",
            aliases=("rootfs_size",),
            flag="--rootfs-gb",
            cell=True,
        ),
        Option(
            "ports",
            kinds.PORTS,
            "ports to expose: 8888/http, 22/tcp (a port alone is tcp)",
            flag="--ports",
            cell=True,
            form=FormField("ports", "8888/http, 22/tcp"),
        ),
        Option(
            "envs",
            kinds.ENVS,
            "environment variables: A=1, B=2 (a dict in Python)",
            flag="--envs",
            cell=True,
            form=FormField("envs", "A=1, B=2"),
        ),
        Option(
            "command",
            kinds.free_text(MAX_COMMAND, example="jupyter lab"),
            "start command",
            flag="--command",
            cell=True,
        ),
        Option(
            "entrypoint",
            kinds.free_text(MAX_COMMAND, example="/bin/bash"),
            "container entrypoint",
            flag="--entrypoint",
            cell=True,
        ),
        Option(
            "image_auth_id",
            kinds.text("must be a registry auth id or name", example="my-registry"),
            "registry auth id or name for a private image (never a password)",
            flag="--image-auth-id",
            cell=True,
        ),
        Option(
            "network_storages",
            kinds.NETWORK_STORAGES,
            "network volumes to mount by id: ID or ID:/path",
        ),
        Option(
            "volumes",
            kinds.VOLUMES,
            "network volumes to mount, name or id, NAME:/path for another mount point "
            "(pins the create to the volume's region)",
            aliases=("volume",),
            flag="--volume",
            flag_aliases=("--volumes",),
            cell=True,
            repeat=True,
        ),
        Option(
            "prefer",
            kinds.choice(PREFER),
            "offer order: price (cheapest in stock anywhere) or region (the region order)",
            default="price",
            flag="--prefer",
            cell=True,
        ),
        Option(
            "unique_name",
            kinds.SWITCH,
            "append a random suffix to the name",
            default=False,
            flag="--unique-name",
            cell=True,
        ),
        Option(
            "wait",
            kinds.SWITCH,
            "block until wait_until, with progress",
            default=False,
            flag="--wait",
            cell=True,
        ),
        Option(
            "wait_until",
            kinds.choice(WAIT_TARGETS),
            "what the wait waits for",
            default="running",
            flag="--wait-until",
            cell=True,
        ),
        Option(
            "timeout",
            kinds.DURATION,
            "how long the wait waits before giving up",
            flag="--timeout",
            cell=True,
        ),
        Option(
            "progress",
            kinds.PROGRESS,
            "how the wait shows progress: None (live in notebooks), 'text', 'silent' or a callable",
        ),
        Option(
            "background",
            kinds.SWITCH,
            "return at once and show a live panel",
            default=False,
            flag="--background",
            cell=True,
            python=False,
        ),
        Option(
            "no_guard",
            kinds.SWITCH,
            "no guard rule, not even your defaults (guard=False in Python)",
            default=False,
            flag="--no-guard",
            cell=True,
            python=False,
        ),
    ),
)
