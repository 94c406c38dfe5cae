"""The sandbox's seeded catalog: clusters, GPU products (one price per product id), per-cluster
stock, official templates and known public images. Everything derived from the seed is fixed.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

PRICE_UNIT = 100_000  # API prices are integers in 1/100000 USD per hour
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class ClusterSpec:
    id: str
    name: str
    city: str
    support_network_storage: bool
    support_instance_network: bool

    @property
    def region_label(self) -> str:
        return f"{self.name} ({self.city})"


CLUSTERS: tuple[ClusterSpec, ...] = (
    ClusterSpec("as-sgp-2", "AS-SGP-02", "Singapore", True, True),
    ClusterSpec("cn-hongkong-1", "CN-HK-01", "Hong Kong", True, False),
    ClusterSpec("as-in-1", "AS-IN-01", "Mumbai", False, False),
    ClusterSpec("us-ca-nas-6", "US-CA-06", "California", True, True),
    ClusterSpec("us-west-1", "US-WEST-01", "Oregon", True, False),
    ClusterSpec("eu-de-1", "EU-DE-01", "Frankfurt", True, True),
    ClusterSpec("eu-west-1", "EU-WEST-01", "Dublin", False, False),
    ClusterSpec("oc-au-1", "OC-AU-01", "Sydney", False, False),
)
CLUSTERS_BY_ID: dict[str, ClusterSpec] = {c.id: c for c in CLUSTERS}

_ALL = tuple(c.id for c in CLUSTERS)


@dataclass(frozen=True)
class ProductSpec:
    """One product id as the live catalog sells it: ONE price (and spot price) for every
    cluster that offers it. The same GPU is sold under other ids elsewhere at other prices."""

    id: str
    name: str
    gpu_type: str  # what /clusters lists in availableGpuType
    cpu_per_gpu: int
    memory_per_gpu: int
    disk_per_gpu: int
    max_rootfs: int
    price: int  # 1/100000 USD per GPU-hour, on demand
    spot_price: int | None  # None = no spot offer
    clusters: tuple[str, ...]
    monthly: bool = True
    on_demand: bool = True  # False = a spot-only product
    max_local_storage: int = 0

    @property
    def billing_methods(self) -> list[str]:
        methods = ["onDemand"] if self.on_demand else []
        if self.monthly:
            methods.append("monthly")
        if self.spot_price is not None:
            methods.append("spot")
        return methods

    @property
    def monthly_prices(self) -> list[tuple[int, int]]:
        """(months, price per GPU-month) with the usual longer-term discounts."""
        if not self.monthly:
            return []
        return [
            (months, int(self.price * HOURS_PER_MONTH * discount) // 100 * 100)
            for months, discount in ((1, 0.85), (3, 0.8), (6, 0.75), (12, 0.7))
        ]


PRODUCTS: tuple[ProductSpec, ...] = (
    # RTX 4090 under four ids, as live: "4090.16c62g" at 35000 in two regions, the older
    # numeric id "26" at 67000 in one region (both seen live), two more elsewhere.
    ProductSpec(
        "4090.16c62g", "RTX 4090 24GB", "RTX 4090", 16, 62, 100, 1000, 35000, 17500,
        ("as-sgp-2", "cn-hongkong-1"),
    ),
    ProductSpec(
        "4090.16c96g.v2", "RTX 4090 24GB", "RTX 4090", 16, 96, 200, 2000, 39000, 19500,
        ("as-sgp-2", "us-ca-nas-6", "eu-de-1"),
    ),
    ProductSpec("26", "RTX 4090 24GB", "RTX 4090", 12, 46, 80, 500, 67000, None, ("us-west-1",)),
    ProductSpec(
        "4090.12c48g", "RTX 4090 24GB", "RTX 4090", 12, 48, 80, 500, 42000, 21000,
        ("as-in-1", "eu-west-1", "oc-au-1"),
    ),
    ProductSpec(
        "5090.16c90g", "RTX 5090 32GB", "RTX 5090", 16, 90, 200, 2000, 69000, 34500,
        ("as-sgp-2", "us-ca-nas-6", "eu-west-1"),
    ),
    ProductSpec(
        "5090.24c120g", "RTX 5090 32GB", "RTX 5090", 24, 120, 250, 2000, 79000, None,
        ("us-west-1", "eu-de-1"),
    ),
    ProductSpec(
        "3090.12c46g", "RTX 3090 24GB", "RTX 3090", 12, 46, 80, 500, 21000, 11500,
        ("as-sgp-2", "cn-hongkong-1", "as-in-1", "us-west-1", "eu-west-1"),
    ),
    ProductSpec(
        "4080S.12c46g", "RTX 4080 SUPER 16GB", "RTX 4080", 12, 46, 80, 500, 18000, 9900,
        ("cn-hongkong-1", "as-in-1", "us-west-1", "oc-au-1"),
    ),
    ProductSpec(
        "L40S.16c125g", "L40S 48GB", "L40S", 16, 125, 250, 3000, 86000, 51600,
        ("as-sgp-2", "us-ca-nas-6", "eu-de-1", "eu-west-1"),
    ),
    ProductSpec(
        "A100-80GB.14c240g", "A100 SXM 80GB", "A100", 14, 240, 400, 6144, 160000, 96000,
        ("as-sgp-2", "us-ca-nas-6", "us-west-1", "eu-de-1"),
    ),
    # Spot-only: invisible in the default (onDemand) listing, found with billingMethod=spot.
    ProductSpec(
        "A100-80GB.spot", "A100 SXM 80GB", "A100", 14, 240, 400, 6144, 90000, 90000,
        ("as-in-1", "oc-au-1"), monthly=False, on_demand=False,
    ),
    ProductSpec(
        "H100-80GB.16c240g", "H100 SXM 80GB", "H100", 16, 240, 400, 6144, 249000, 161900,
        ("us-ca-nas-6", "us-west-1", "eu-de-1", "as-sgp-2"),
    ),
    ProductSpec(
        "H200.16c240g", "H200 141GB", "H200", 16, 240, 500, 6144, 349000, None,
        ("us-ca-nas-6", "eu-de-1"),
    ),
    ProductSpec(
        "6000ADA.12c120g", "RTX 6000 Ada 48GB", "RTX 6000 Ada", 12, 120, 200, 2000, 70000, 38500,
        ("as-sgp-2", "us-west-1", "eu-west-1", "oc-au-1"),
    ),
    ProductSpec(
        "A6000.10c60g", "RTX A6000 48GB", "A6000", 10, 60, 150, 1000, 49000, 27000,
        ("as-sgp-2", "cn-hongkong-1", "us-ca-nas-6", "eu-west-1"),
    ),
    ProductSpec(
        "L4.8c30g", "L4 24GB", "L4", 8, 30, 60, 500, 25000, None,
        ("as-in-1", "us-west-1", "eu-de-1", "oc-au-1"),
        monthly=False,
    ),
)  # fmt: skip
PRODUCTS_BY_ID: dict[str, ProductSpec] = {p.id: p for p in PRODUCTS}

#: Offers whose stock is pinned regardless of the seed, so demos and docs can rely on them:
#: the flagship 4090 in Singapore always has room, the H200 in Frankfurt is always sold out.
PINNED_STOCK: dict[tuple[str, str], int] = {
    ("4090.16c62g", "as-sgp-2"): 64,
    ("4090.16c62g", "cn-hongkong-1"): 32,
    ("H200.16c240g", "eu-de-1"): 0,
}

_STOCK_CHOICES = (0, 0, 2, 3, 4, 8, 12, 16, 24, 32, 48, 64)


@dataclass
class Offer:
    """One product in one cluster: its stock (mutable). Prices belong to the product."""

    product: ProductSpec
    cluster: ClusterSpec
    stock: int = 0

    @property
    def billing_methods(self) -> list[str]:
        return self.product.billing_methods


def build_offers(seed: int) -> dict[tuple[str, str], Offer]:
    """Every (product id, cluster id) offer with seeded stock."""
    rng = random.Random(f"novita-sandbox-offers-{seed}")
    offers: dict[tuple[str, str], Offer] = {}
    for product in PRODUCTS:
        for cluster_id in product.clusters:
            stock = PINNED_STOCK.get((product.id, cluster_id), rng.choice(_STOCK_CHOICES))
            offers[(product.id, cluster_id)] = Offer(product, CLUSTERS_BY_ID[cluster_id], stock)
    return offers


def inventory_state(stock: int) -> str:
    """Coarse stock signal as the live API reports it."""
    if stock <= 0:
        return "none"
    if stock <= 4:
        return "low"
    if stock <= 16:
        return "normal"
    return "high"


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------

PRIVATE_REGISTRY_HOST = "registry.sandbox.local"
FAILING_IMAGE_MARKER = "does-not-exist"

#: Known public images and their compressed sizes in GB (drives the pull time).
KNOWN_IMAGES: dict[str, float] = {
    "ubuntu:22.04": 0.03,
    "nvidia/cuda:12.4.1-base-ubuntu22.04": 0.3,
    "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04": 5.2,
    "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime": 3.9,
    "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-devel": 9.6,
    "novitalabs/pytorch-jupyter:2.4.0-cuda12.4": 6.8,
    "jupyter/base-notebook:latest": 0.3,
    "jupyter/pytorch-notebook:cuda12-latest": 5.5,
    "universonic/stable-diffusion-webui:latest": 12.5,
    "vllm/vllm-openai:latest": 8.9,
    "ollama/ollama:latest": 1.9,
    "tensorflow/tensorflow:2.16.1-gpu-jupyter": 3.6,
}

#: Known images whose app listens on a port by itself (EXPOSE): Jupyter images serve 8888.
IMAGE_EXPOSED_PORTS: dict[str, tuple[tuple[int, str], ...]] = {
    "novitalabs/pytorch-jupyter:2.4.0-cuda12.4": ((8888, "http"),),
    "jupyter/base-notebook:latest": ((8888, "http"),),
    "jupyter/pytorch-notebook:cuda12-latest": ((8888, "http"),),
    "tensorflow/tensorflow:2.16.1-gpu-jupyter": ((8888, "http"),),
    "universonic/stable-diffusion-webui:latest": ((7860, "http"),),
}

_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_PATTERN = (
    rf"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


def image_size_gb(image: str) -> float:
    """Known images have real-ish sizes; any other is 0.5–12 GB, derived from a hash."""
    if image in KNOWN_IMAGES:
        return KNOWN_IMAGES[image]
    if ":" not in image.rsplit("/", 1)[-1] and f"{image}:latest" in KNOWN_IMAGES:
        return KNOWN_IMAGES[f"{image}:latest"]
    digest = hashlib.sha256(image.encode("utf-8")).digest()
    return 0.5 + (int.from_bytes(digest[:4], "big") % 1150) / 100.0


def pull_seconds(image: str) -> float:
    """Realistic pull + extract time: 15 s plus ~8 s per GB, capped at 4 minutes."""
    return min(240.0, 15.0 + 8.0 * image_size_gb(image))


def is_private_image(image: str) -> bool:
    return image.split("/", 1)[0] == PRIVATE_REGISTRY_HOST


# ---------------------------------------------------------------------------------------------
# Official templates (and one community template of another user)
# ---------------------------------------------------------------------------------------------

OFFICIAL_TEMPLATES: tuple[dict, ...] = (
    {
        "Id": "tpl-pytorch-jupyter",
        "name": "PyTorch 2.4 + Jupyter",
        "readme": "PyTorch 2.4, CUDA 12.4 and JupyterLab on port 8888 (no token inside the sandbox).",
        "logo": "",
        "type": "instance",
        "channel": "official",
        "image": "novitalabs/pytorch-jupyter:2.4.0-cuda12.4",
        "imageAuth": "",
        "startCommand": "jupyter lab --ip=0.0.0.0 --port=8888 --allow-root",
        "entrypoint": "",
        "rootfsSize": 60,
        "ports": [{"type": "http", "ports": [8888]}, {"type": "tcp", "ports": [22]}],
        "envs": [{"key": "JUPYTER_TOKEN", "value": ""}],
        "tools": [{"name": "Jupyter", "describe": "JupyterLab", "port": 8888, "type": "http"}],
        "minCudaVersion": "12.4",
        "recommendCards": [{"gpuSpecId": "4090.16c62g", "cardNum": 1}],
    },
    {
        "Id": "tpl-cuda-base",
        "name": "CUDA 12.4 base (Ubuntu 22.04)",
        "readme": "A bare CUDA runtime: bring your own stack.",
        "logo": "",
        "type": "instance",
        "channel": "official",
        "image": "nvidia/cuda:12.4.1-base-ubuntu22.04",
        "imageAuth": "",
        "startCommand": "sleep infinity",
        "entrypoint": "",
        "rootfsSize": 30,
        "ports": [{"type": "tcp", "ports": [22]}],
        "envs": [],
        "tools": [],
        "minCudaVersion": "12.4",
        "recommendCards": [],
    },
    {
        "Id": "tpl-sd-webui",
        "name": "Stable Diffusion WebUI",
        "readme": "AUTOMATIC1111 Stable Diffusion WebUI on port 7860.",
        "logo": "",
        "type": "instance",
        "channel": "official",
        "image": "universonic/stable-diffusion-webui:latest",
        "imageAuth": "",
        "startCommand": "",
        "entrypoint": "",
        "rootfsSize": 100,
        "ports": [{"type": "http", "ports": [7860]}],
        "envs": [],
        "tools": [],
        "minCudaVersion": "12.1",
        "recommendCards": [{"gpuSpecId": "4090.16c62g", "cardNum": 1}],
    },
    {
        "Id": "tpl-vllm-openai",
        "name": "vLLM OpenAI-compatible server",
        "readme": "vLLM serving an OpenAI-compatible API on port 8000.",
        "logo": "",
        "type": "instance",
        "channel": "official",
        "image": "vllm/vllm-openai:latest",
        "imageAuth": "",
        "startCommand": "",
        "entrypoint": "",
        "rootfsSize": 120,
        "ports": [{"type": "http", "ports": [8000]}],
        "envs": [{"key": "HF_HOME", "value": "/workspace/hf"}],
        "tools": [],
        "minCudaVersion": "12.4",
        "recommendCards": [{"gpuSpecId": "A100-80GB.14c240g", "cardNum": 1}],
    },
    {
        "Id": "tpl-community-comfyui",
        "name": "ComfyUI (community)",
        "readme": "ComfyUI on port 8188, shared by another user.",
        "logo": "",
        "type": "instance",
        "channel": "community",
        "user": "community-user",
        "image": "yanwk/comfyui-boot:latest",
        "imageAuth": "",
        "startCommand": "",
        "entrypoint": "",
        "rootfsSize": 80,
        "ports": [{"type": "http", "ports": [8188]}],
        "envs": [],
        "tools": [],
        "minCudaVersion": "12.1",
        "recommendCards": [{"gpuSpecId": "4090.16c62g", "cardNum": 1}],
    },
)

#: A fixed creation time for the official templates (they predate the sandbox).
OFFICIAL_TEMPLATE_CREATED_AT = "1717200000"
