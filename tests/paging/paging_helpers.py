"""Constants and helpers of the paging tests: many instances made straight through the API."""

from __future__ import annotations

#: Several pages at the client's default page size (100), and a short last page.
MANY = 250
PRODUCT_ID = "4090.16c62g"
CLUSTER_ID = "as-sgp-2"
IMAGE = "nvidia/cuda:12.4.1-base-ubuntu22.04"


def create_many(client, count: int, prefix: str = "pg") -> list[str]:
    body = {
        "productId": PRODUCT_ID,
        "clusterId": CLUSTER_ID,
        "gpuNum": 1,
        "rootfsSize": 20,
        "imageUrl": IMAGE,
        "kind": "gpu",
    }
    return [client.api.create_instance({**body, "name": f"{prefix}-{i}"}) for i in range(count)]
