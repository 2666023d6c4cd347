"""The cp functions from Python on 2+ GPUs (torchrun): cpattn over a torch NCCL process group
and a vLLM-style group next to the raw torch collectives and vLLM's Python + Triton rs (its
correct kernel from the file given by --vllm-triton, e.g. .peer/seed_triton_bench.py), in one
run. Median wall time of one call and a synchronisation, slowest rank (as `cpattn bench`
times the C++ call), bf16, the same group and inputs in every column.
    torchrun --nproc-per-node 2 bench/python_cp.py [--vllm-triton PATH]"""
import argparse
import ctypes
import importlib.util
import os
import time

import torch
import torch.distributed as dist

import cpattn


def median_us(fn, iters=50, warmup=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e6)
    times.sort()
    t = torch.tensor([times[len(times) // 2]], device="cuda")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)  # the slowest rank
    return t.item()


class VllmStyleGroup:
    """vLLM's GroupCoordinator attributes over the torch group, its own ncclComm_t exposed
    as device_communicator.pynccl_comm.comm."""

    def __init__(self, pg):
        self._pg, self.world_size, self.rank_in_group = pg, dist.get_world_size(pg), dist.get_rank(pg)
        ptr = pg._get_backend(torch.device("cuda", torch.cuda.current_device()))._comm_ptr()
        pynccl = type("PyNcclCommunicator", (), {"comm": ctypes.c_void_p(ptr), "disabled": False})()
        self.device_communicator = type("DeviceCommunicator", (), {"pynccl_comm": pynccl})()

    def all_gather(self, t, dim=0):
        out = t.new_empty((self.world_size * t.shape[0],) + tuple(t.shape[1:]))
        dist.all_gather_into_tensor(out, t.contiguous(), group=self._pg)
        return out

    def reduce_scatter(self, t, dim=0):
        t = t.movedim(dim, 0).contiguous()
        out = t.new_empty((t.shape[0] // self.world_size,) + tuple(t.shape[1:]))
        dist.reduce_scatter_tensor(out, t, group=self._pg)
        return out.movedim(0, dim)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vllm-triton", default=None, help="a file defining vLLM's Triton correct_attn_out")
    args = parser.parse_args()
    rank, n = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", device_id=torch.device("cuda", rank))
    pg = dist.group.WORLD
    vllm_group = VllmStyleGroup(pg)
    triton_correct = None
    if args.vllm_triton:
        spec = importlib.util.spec_from_file_location("vllm_triton", args.vllm_triton)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        triton_correct = module.correct_attn_out
    columns = ["raw ag+rs", "vLLM Python+Triton rs", "cpattn rs vLLM group", "cpattn rs torch PG",
               "cpattn ar torch PG", "cpattn a2a torch PG", "cpattn rs collectives"]
    if rank == 0:
        print(f"# cp functions from Python, {n} x {torch.cuda.get_device_name()}, bf16, median us per call and "
              f"synchronisation (slowest rank); cpattn path auto unless named")
        print("| shape | " + " | ".join(columns) + " |")
        print("| --- " * (len(columns) + 1) + "|")
    for (b, h, d) in [(1, 128, 512), (8, 128, 512), (64, 128, 512), (256, 128, 512), (2048, 16, 128)]:
        out = torch.randn(b, h, d, device="cuda", dtype=torch.bfloat16)
        lse = torch.randn(b, h, device="cuda")
        lses = torch.empty(n * b, h, device="cuda")
        part = torch.empty(b, h // n, d, device="cuda", dtype=torch.bfloat16)

        def raw():  # the collectives of the rs path alone: lses gathered, outputs reduce-scattered
            dist.all_gather_into_tensor(lses, lse, group=pg)
            dist.reduce_scatter_tensor(part.view(-1), out.view(-1), group=pg)

        def vllm_rs():
            gathered = vllm_group.all_gather(lse.contiguous(), dim=0).view(n, b, h)
            corrected, _ = triton_correct(out.clone(), gathered, rank, None)
            return vllm_group.reduce_scatter(corrected, dim=1)

        row = [median_us(raw),
               median_us(vllm_rs) if triton_correct else float("nan"),
               median_us(lambda: cpattn.cp_lse_ag_out_rs(out, lse, vllm_group)),
               median_us(lambda: cpattn.cp_lse_ag_out_rs(out, lse, pg)),
               median_us(lambda: cpattn.cp_lse_ag_out_ar(out, lse, pg)),
               median_us(lambda: cpattn.cp_lse_a2a_merge(out, lse, pg)),
               median_us(lambda: cpattn.cp_lse_ag_out_rs(out, lse, pg, path="collectives"))]
        if rank == 0:
            print(f"| B{b} H{h} D{d} | " + " | ".join(f"{v:.1f}" for v in row) + " |", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
