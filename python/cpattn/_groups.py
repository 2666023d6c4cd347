"""cp_group adapters: a vLLM-style group (duck-typed: world_size, rank_in_group,
all_gather(t, dim), reduce_scatter(t, dim), all_reduce(t)) is used as it is; a
torch.distributed ProcessGroup and an mpi4py communicator are wrapped. vLLM is never imported."""
from ._arrays import kind


class TorchDistributedGroup:
    def __init__(self, pg):
        import torch.distributed as dist
        self._dist, self._pg = dist, pg
        self.world_size = dist.get_world_size(pg)
        self.rank_in_group = dist.get_rank(pg)

    def all_gather(self, t, dim=0):
        import torch
        parts = [torch.empty_like(t) for _ in range(self.world_size)]
        self._dist.all_gather(parts, t.contiguous(), group=self._pg)
        return torch.cat(parts, dim=dim)

    def reduce_scatter(self, t, dim=0):
        import torch
        chunks = [c.contiguous() for c in torch.chunk(t, self.world_size, dim=dim)]
        # gloo has no reduce_scatter: an all-reduce then this rank's chunk is the same sum
        full = torch.stack(chunks)
        self._dist.all_reduce(full, group=self._pg)
        return full[self.rank_in_group]

    def all_reduce(self, t):
        t = t.clone()
        self._dist.all_reduce(t, group=self._pg)
        return t


def _to_host(t, for_sum):
    """(numpy array, back) for any array kind. Sums run in float32 (float64 stays float64);
    gathers move the raw bytes, so bf16 and fp8 need no numpy dtype."""
    import numpy as np
    k = kind(t)
    if k == "numpy":
        x = t.astype(np.float32) if for_sum and t.dtype != np.float64 else t
        return np.ascontiguousarray(x), lambda r: r.astype(t.dtype, copy=False)
    if k == "cupy":
        import cupy
        x = cupy.asnumpy(t)
        x = x.astype(np.float32) if for_sum and x.dtype != np.float64 else x
        return np.ascontiguousarray(x), lambda r: cupy.asarray(r.astype(t.dtype, copy=False))
    import torch
    src = t.detach()
    if for_sum:
        x = src.double() if src.dtype == torch.float64 else src.float()
        return x.cpu().contiguous().numpy(), lambda r: torch.from_numpy(r).to(device=t.device, dtype=t.dtype)
    width = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[src.element_size()]
    x = src.contiguous().view(width).cpu().numpy()
    return x, lambda r: torch.from_numpy(r).view(t.dtype).to(t.device)


class MpiGroup:
    """An mpi4py communicator as a cp_group. Data goes through host memory (numpy buffers), so
    it works for every array kind on any MPI; for CUDA tensors at speed use NCCL (the C++ API
    or a torch.distributed NCCL group)."""

    def __init__(self, comm):
        self._comm = comm
        self.world_size = comm.Get_size()
        self.rank_in_group = comm.Get_rank()

    def all_gather(self, t, dim=0):
        import numpy as np
        from mpi4py import MPI
        x, back = _to_host(t, for_sum=False)
        parts = np.empty((self.world_size,) + x.shape, x.dtype)
        self._comm.Allgather([x.reshape(-1).view(np.uint8), MPI.BYTE], [parts.reshape(-1).view(np.uint8), MPI.BYTE])
        return back(np.concatenate(list(parts), axis=dim))

    def _sum(self, t):
        import numpy as np
        from mpi4py import MPI
        x, back = _to_host(t, for_sum=True)
        total = np.empty_like(x)
        self._comm.Allreduce(x, total, op=MPI.SUM)
        return total, back

    def reduce_scatter(self, t, dim=0):
        import numpy as np
        total, back = self._sum(t)
        return back(np.ascontiguousarray(np.split(total, self.world_size, axis=dim)[self.rank_in_group]))

    def all_reduce(self, t):
        total, back = self._sum(t)
        return back(total)


def as_group(g):
    if all(hasattr(g, a) for a in ("world_size", "rank_in_group", "all_gather", "reduce_scatter")):
        return g
    try:
        import torch.distributed as dist
        if isinstance(g, dist.ProcessGroup):
            return TorchDistributedGroup(g)
    except ImportError:
        pass
    if type(g).__module__.startswith("mpi4py") and hasattr(g, "Allgather"):
        return MpiGroup(g)
    raise TypeError("cpattn: invalid cp_group: expected a vLLM-style group (world_size, rank_in_group, "
                    "all_gather, reduce_scatter), a torch.distributed ProcessGroup or an mpi4py communicator, "
                    f"got {type(g).__name__}")
