"""Data-parallel training under torchrun: which process this is, and the collectives the loop needs.

`torchrun --nproc-per-node N --no-python salt-budget train ...` starts N processes with RANK,
WORLD_SIZE and LOCAL_RANK set; each trains on its own share of every batch, and the gradients are
averaged before the optimizer steps, so every process holds the same weights. One flat all-reduce
at the end of a step carries the gradients and the loss, without DistributedDataParallel: a stage's
loss calls several modules, which the wrapper's forward hooks would not see, and a step of many
micro-batches is long against one all-reduce (its cost on GPUs is not measured yet). Without these variables
nothing here starts a process group, and a run is the plain single-process run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The process that writes files and prints progress."""
        return self.rank == 0


def is_main_process() -> bool:
    """Whether this process reports (the only one without torchrun, rank 0 under it)."""
    return os.environ.get("RANK", "0") == "0"


def ranks_from_environment(device: torch.device) -> tuple[Ranks, torch.device]:
    """The torchrun process this is, with its process group started (NCCL on CUDA, gloo on a CPU) and
    its device: cuda:LOCAL_RANK on a CUDA device. A single process gets Ranks() and `device` unchanged."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks(), device
    ranks = Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=ranks.rank, world_size=world)
    return ranks, device


def average_gradients(parameters: list[torch.nn.Parameter], loss: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """Average the gradients and the loss over the processes in one all-reduce; returns the averaged loss.
    A parameter the step did not use has no gradient in any process (they run the same code) and stays so,
    as in a single process."""
    if ranks.world == 1:
        return loss
    used = [p for p in parameters if p.grad is not None]
    flat = torch.cat([p.grad.reshape(-1).float() for p in used] + [loss.reshape(1).float()])
    dist.all_reduce(flat)
    flat /= ranks.world
    offset = 0
    for parameter in used:
        size = parameter.grad.numel()
        parameter.grad = flat[offset : offset + size].view_as(parameter.grad).to(parameter.grad.dtype)
        offset += size
    return flat[-1].clone()  # not a view: a pending loss must not keep the step's whole buffer alive


def sum_over_ranks(value: float, ranks: Ranks, device: torch.device) -> float:
    """A host number summed over the processes (float64): a log's FLOPs, exact where each process's are."""
    if ranks.world == 1:
        return value
    total = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total.item())


def barrier(ranks: Ranks) -> None:
    if ranks.world > 1:
        dist.barrier()
