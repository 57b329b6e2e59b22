"""Device choice and the ``torch.distributed`` helpers of the trainer (one process per GPU under torchrun/SageMaker)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from ..sagemaker_env import DistributedEnv
from .errors import ConfigError

logger = logging.getLogger(__name__)


def resolve_device(name: str, dist_env: DistributedEnv) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda but no CUDA GPU is available; use --device cpu or auto")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    index = dist_env.local_rank % max(1, torch.cuda.device_count())
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def init_distributed(dist_env: DistributedEnv, device: torch.device) -> bool:
    """Join the process group (env:// from torchrun); True when this call created it."""
    if not dist_env.is_distributed or (dist.is_available() and dist.is_initialized()):
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, init_method="env://", rank=dist_env.rank, world_size=dist_env.world_size)
    logger.info("distributed: rank %d of %d (%s)", dist_env.rank, dist_env.world_size, backend)
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_object(obj, rank: int):
    """``obj`` from rank 0 on every rank (the value itself when not distributed)."""
    if not is_distributed():
        return obj
    holder = [obj if rank == 0 else None]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


class ShardSampler(Sampler[int]):
    """Indices ``rank::world_size`` in order, without padding: evaluation sums are exact after all-reduce."""

    def __init__(self, length: int, rank: int = 0, world_size: int = 1):
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    if not is_distributed():
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
