"""cp_group adapters: a vLLM-style group (duck-typed: world_size, rank_in_group,
all_gather(t, dim), reduce_scatter(t, dim), all_reduce(t)) is used as it is; a
torch.distributed ProcessGroup is wrapped. vLLM is never imported."""


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


def as_group(g):
    if all(hasattr(g, a) for a in ("world_size", "rank_in_group", "all_gather", "reduce_scatter")):
        return g
    try:
        import torch.distributed as dist
        if isinstance(g, dist.ProcessGroup):
            return TorchDistributedGroup(g)
    except ImportError:
        pass
    raise TypeError("cpattn: invalid cp_group: expected a vLLM-style group (world_size, rank_in_group, "
                    f"all_gather, reduce_scatter) or a torch.distributed ProcessGroup, got {type(g).__name__}")
