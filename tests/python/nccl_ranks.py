"""Run under torchrun, one process per GPU (test_torch_nccl.py starts it): the cp functions
over a torch NCCL process group and over vLLM-style stand-in groups (with and without an
NCCL communicator), by both transports, against float64; a CUDA graph captured around
them and replayed with new inputs; torch.compile(fullgraph=True) against eager. Prints
'rank r: ok' when every check on this rank passed."""
import ctypes
import os
import sys

import numpy as np
import torch
import torch.distributed as dist

import cpattn
from conftest import reference_merge


class VllmStyleGroup:
    """The attributes vLLM's GroupCoordinator offers, over a torch process group; with
    `with_comm`, device_communicator.pynccl_comm.comm is the group's own ncclComm_t."""

    def __init__(self, pg, with_comm):
        self._pg = pg
        self.world_size, self.rank_in_group = dist.get_world_size(pg), dist.get_rank(pg)
        if with_comm:
            ptr = pg._get_backend(torch.device("cuda", torch.cuda.current_device()))._comm_ptr()
            pynccl = type("PyNcclCommunicator", (), {"comm": ctypes.c_void_p(ptr), "disabled": False})()
            self.device_communicator = type("DeviceCommunicator", (), {"pynccl_comm": pynccl})()

    def all_gather(self, t, dim=0):
        out = torch.empty((self.world_size * t.shape[0],) + tuple(t.shape[1:]), dtype=t.dtype, device=t.device)
        dist.all_gather_into_tensor(out, t.contiguous(), group=self._pg)
        return out if dim == 0 else torch.cat(out.chunk(self.world_size), dim=dim)

    def reduce_scatter(self, t, dim=0):
        t = t.movedim(dim, 0).contiguous()
        out = torch.empty((t.shape[0] // self.world_size,) + tuple(t.shape[1:]), dtype=t.dtype, device=t.device)
        dist.reduce_scatter_tensor(out, t, group=self._pg)
        return out.movedim(0, dim)

    def all_reduce(self, t):
        dist.all_reduce(t, group=self._pg)
        return t


def problem(n, b, h, d, seed):
    rng = np.random.default_rng(seed)  # the same on every rank: each rank knows the whole problem
    outs = rng.standard_normal((n, b, h, d)).astype(np.float32)
    lses = (rng.standard_normal((n, b, h)) * 3).astype(np.float32)
    kv = np.ones((n, b), np.int32)
    kv[:, 0] = 0  # a row with no keys on any rank
    if b > 1:
        kv[n - 1, 1] = 0  # an empty shard
    outs[kv == 0] = np.nan
    lses[kv == 0] = 5.0  # garbage, masked by kv_lens
    return outs, lses, kv


def main():
    rank, n = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", device_id=torch.device("cuda", rank))
    pg = dist.group.WORLD
    dev = torch.device("cuda", rank)
    failures = []

    def fail(what):  # printed at once: a later exception must not hide earlier failures
        failures.append(what)
        print(f"rank {rank}: FAILED {what}", flush=True)

    groups = {"torch PG": pg, "vLLM group with comm": VllmStyleGroup(pg, True),
              "vLLM group without comm": VllmStyleGroup(pg, False)}
    fns = {"rs": cpattn.cp_lse_ag_out_rs, "ar": cpattn.cp_lse_ag_out_ar, "a2a": cpattn.cp_lse_a2a_merge}
    for (b, h, d) in [(1, 16, 128), (64, 16, 128), (1, 128, 512), (64, 128, 512), (5, 6 * n, 72)]:
        outs, lses, kv = problem(n, b, h, d, b + d)
        ref_out, ref_lse, _ = reference_merge(outs, lses, kv_lens=kv)
        for dtype, tol in [(torch.bfloat16, 2e-2), (torch.float32, 2e-5)]:
            if d == 72 and dtype == torch.bfloat16:
                dtype, tol = torch.float16, 4e-3
            for gname, group in groups.items():
                for path in ("auto", "collectives", "direct"):
                    if gname == "vLLM group without comm" and path == "direct":
                        continue  # no communicator: direct raises (checked below)
                    for op, fn in fns.items():
                        heads = slice(None) if op == "ar" else slice(rank * (h // n), (rank + 1) * (h // n))
                        o = torch.from_numpy(outs[rank]).to(dev, dtype)
                        out, lse = fn(o, torch.from_numpy(lses[rank]).to(dev), group, return_lse=True,
                                      kv_lens=torch.from_numpy(kv[rank]).to(dev), path=path)
                        ok_out = np.allclose(out.float().cpu().numpy(), ref_out[:, heads], rtol=tol, atol=tol)
                        ok_lse = np.allclose(lse.float().cpu().numpy(), ref_lse[:, heads], rtol=1e-5, atol=1e-5)
                        if not (ok_out and ok_lse) or out.dtype != dtype:
                            fail(f"{op} {gname} {path} B{b} H{h} D{d} {dtype}: out {ok_out} lse {ok_lse}")
    try:
        cpattn.cp_lse_ag_out_rs(torch.zeros(2, 2 * n, 8, device=dev), torch.zeros(2, 2 * n, device=dev),
                                groups["vLLM group without comm"], path="direct")
        fail("direct without a communicator did not raise")
    except ValueError as e:
        if "invalid path" not in str(e):
            fail(f"direct without a communicator: {e}")

    # CUDA graph: one eager call (registers buffers, agrees on the call), capture, new inputs, replay
    b, h, d = 4, 8 * n, 64
    for path in ("direct", "collectives"):
        o = torch.zeros(b, h, d, device=dev, dtype=torch.bfloat16)
        l = torch.zeros(b, h, device=dev)
        cpattn.cp_lse_a2a_merge(o, l, pg, path=path)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = cpattn.cp_lse_a2a_merge(o, l, pg, path=path)
        for seed in (1, 2):
            outs, lses, _ = problem(n, b, h, d, 100 + seed)
            outs = np.nan_to_num(outs)
            o.copy_(torch.from_numpy(outs[rank]))
            l.copy_(torch.from_numpy(lses[rank]))
            graph.replay()
            torch.cuda.synchronize()
            ref_out, _, _ = reference_merge(outs, lses)
            heads = slice(rank * (h // n), (rank + 1) * (h // n))
            if not np.allclose(captured.float().cpu().numpy(), ref_out[:, heads], rtol=2e-2, atol=2e-2):
                fail(f"graph replay {path} seed {seed}")

    # torch.compile: the cp functions are opaque custom ops with fake implementations
    outs, lses, _ = problem(n, 3, 4 * n, 32, 7)
    outs = np.nan_to_num(outs)
    x, y = torch.from_numpy(outs[rank]).to(dev), torch.from_numpy(lses[rank]).to(dev)
    print(f"rank {rank}: checked every group, path and op; graphs done", flush=True)
    for gname in ("torch PG", "vLLM group with comm"):
        group = groups[gname]

        def step(a, b):
            return cpattn.cp_lse_ag_out_rs(a * 1.0, b, group, return_lse=True)

        try:
            eager = step(x, y)
            torch._dynamo.reset()
            compiled = torch.compile(step, fullgraph=True)(x, y)
            if not all(torch.allclose(a, c, rtol=1e-6, atol=1e-6) for a, c in zip(eager, compiled)):
                fail(f"torch.compile differs from eager ({gname})")
        except Exception as e:  # noqa: BLE001  (reported as a failure of this rank)
            fail(f"torch.compile over the {gname}: {type(e).__name__}: {str(e)[:300]}")
        print(f"rank {rank}: torch.compile over the {gname} done", flush=True)

    print(f"rank {rank}: {'ok' if not failures else 'failed'} (world {n})", flush=True)
    dist.destroy_process_group()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
