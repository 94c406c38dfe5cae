"""What a sandbox instance's ``nvidia-smi`` reports: each product's GPU as the driver names it,
its memory and power limit, and a reading now (utilisation from the metrics control).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .metrics import gpu_percent
from .records import InstanceRecord
from .world import World


@dataclass(frozen=True)
class GpuModel:
    name: str  # as nvidia-smi prints it
    memory_mib: int
    power_limit_w: int
    idle_power_w: int


#: Keyed by the catalog's ``gpu_type`` (what /clusters lists in ``availableGpuType``).
GPU_MODELS: dict[str, GpuModel] = {
    "RTX 4090": GpuModel("NVIDIA GeForce RTX 4090", 24564, 450, 18),
    "RTX 5090": GpuModel("NVIDIA GeForce RTX 5090", 32607, 575, 22),
    "RTX 3090": GpuModel("NVIDIA GeForce RTX 3090", 24576, 350, 20),
    "RTX 4080": GpuModel("NVIDIA GeForce RTX 4080 SUPER", 16376, 320, 12),
    "L40S": GpuModel("NVIDIA L40S", 46068, 350, 32),
    "A100": GpuModel("NVIDIA A100-SXM4-80GB", 81920, 400, 60),
    "H100": GpuModel("NVIDIA H100 80GB HBM3", 81559, 700, 70),
    "H200": GpuModel("NVIDIA H200", 143771, 700, 76),
    "RTX 6000 Ada": GpuModel("NVIDIA RTX 6000 Ada Generation", 49140, 300, 24),
    "A6000": GpuModel("NVIDIA RTX A6000", 49140, 300, 22),
    "L4": GpuModel("NVIDIA L4", 23034, 72, 16),
}
DRIVER_VERSION = "550.127.05"
CUDA_VERSION = "12.4"


def gpu_model(record: InstanceRecord) -> GpuModel:
    product = record.product
    known = GPU_MODELS.get(product.gpu_type)
    return known or GpuModel(f"NVIDIA {product.gpu_type}", 24576, 300, 20)


def reading(
    world: World, record: InstanceRecord, processes: list[dict[str, Any]]
) -> dict[str, Any]:
    """The instance's GPUs now, as ``nvidia-smi`` shows them. ``processes``: the instance's
    compute processes (pid, name, MiB), spread over its GPUs. Call with ``world.lock`` held."""
    model = gpu_model(record)
    running = record.status == "running"
    percent = round(gpu_percent(world, record, world.clock())) if running else 0
    gpus = []
    for index in range(record.gpu_num):
        mine = [p for i, p in enumerate(processes) if i % record.gpu_num == index]
        used = min(model.memory_mib, 1 + int(model.memory_mib * (0.7 * percent + 2) / 100))
        used = min(model.memory_mib, used + sum(p["usedMemoryMiB"] for p in mine))
        gpus.append(
            {
                "index": index,
                "name": model.name,
                "uuid": f"GPU-{record.id[:8]}-{index:04d}-4e6f-7669-746173616e64",
                "busId": f"00000000:{0x18 + index * 0x10:02X}:00.0",
                "utilizationGpu": percent,
                "utilizationMemory": round(percent * 0.6),
                "memoryTotalMiB": model.memory_mib,
                "memoryUsedMiB": used,
                "temperatureC": 31 + round(percent * 0.45),
                "powerDrawW": round(
                    model.idle_power_w + (model.power_limit_w - model.idle_power_w) * percent / 100,
                    2,
                ),
                "powerLimitW": model.power_limit_w,
                "processes": [dict(p, gpu=index) for p in mine],
            }
        )
    return {
        "driverVersion": DRIVER_VERSION,
        "cudaVersion": CUDA_VERSION,
        "product": record.product.name,
        "gpus": gpus,
    }
