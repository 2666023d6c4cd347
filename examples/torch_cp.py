"""Context-parallel decode with torch.distributed: the KV cache of every sequence is split over
the ranks, each rank computes its partial attention output [B, H, D] and LSE [B, H] over its
own shard, and cpattn's cp functions combine the partials over the process group. Every
rank's result is checked against unsplit float64 attention; exits 1 on a mismatch.

Run (one process per GPU over NCCL; without enough GPUs, on the CPU over gloo):
    PYTHONPATH=build/python torchrun --nproc-per-node 2 examples/torch_cp.py
    PYTHONPATH=build/python torchrun --nproc-per-node 2 examples/torch_cp.py --backend gloo
    PYTHONPATH=build/python torchrun --nproc-per-node 2 examples/torch_cp.py --path direct
--path (auto | collectives | direct) is passed as the cp functions' `path=` keyword; left out,
they use their default, auto. On shared multi-GPU hosts where NVLink multicast is off, also
export NCCL_NVLS_ENABLE=0.
"""
import argparse
import os
import sys

import torch
import torch.distributed as dist

import cpattn

EPS = {torch.bfloat16: 2.0 ** -8, torch.float16: 2.0 ** -10, torch.float32: 2e-5}


def attention(q, k, v, lo, hi):
    """float64 attention of q [B, H, D] over keys [lo_b, hi_b) of k/v [B, S, D] (one KV head
    shared by all query heads, as MLA decode reads its latent cache). Returns out [B, H, D] and
    the natural-log lse [B, H]; a row with no keys gets out 0 and lse -inf."""
    pos = torch.arange(k.shape[1])
    keep = (pos[None] >= lo[:, None]) & (pos[None] < hi[:, None])  # [B, S]
    scores = torch.einsum("bhd,bsd->bhs", q, k) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(~keep[:, None, :], -torch.inf)
    lse = torch.logsumexp(scores, dim=-1)
    p = torch.exp(scores - lse[..., None]).nan_to_num(0.0)
    return torch.einsum("bhs,bsd->bhd", p, v), lse


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["nccl", "gloo"], help="default: nccl with a GPU per rank, else gloo")
    parser.add_argument("--path", choices=["auto", "collectives", "direct"], help="the cp functions' path= keyword")
    args = parser.parse_args()

    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", "29511")):
        os.environ.setdefault(key, value)  # plain `python3 examples/torch_cp.py`: one rank
    local_rank, world = int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    backend = args.backend or ("nccl" if torch.cuda.device_count() >= world else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        device, dtype = torch.device("cuda", local_rank), torch.bfloat16
    else:
        device, dtype = torch.device("cpu"), torch.float32
    dist.init_process_group(backend)
    group = dist.group.WORLD  # any torch.distributed process group, or a vLLM-style group
    rank, n = dist.get_rank(group), dist.get_world_size(group)

    # The same problem on every rank (same generator seed): row 0 has no keys, row 1 fewer
    # keys than ranks (so some shards are empty), the others random lengths.
    B, S, H, D = 16, 64, 16 * n, 128  # rs and a2a need H divisible by n
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(B, H, D, generator=gen, dtype=torch.float64)
    k = torch.randn(B, S, D, generator=gen, dtype=torch.float64)
    v = torch.randn(B, S, D, generator=gen, dtype=torch.float64)
    kv_len = torch.randint(0, S + 1, (B,), generator=gen)
    kv_len[0], kv_len[1] = 0, max(n - 1, 1)
    full_out, full_lse = attention(q, k, v, torch.zeros(B, dtype=torch.long), kv_len)

    # this rank's contiguous shard of each row's keys, and its partial attention
    chunk = (kv_len + n - 1) // n
    lo, hi = torch.minimum(kv_len, rank * chunk), torch.minimum(kv_len, (rank + 1) * chunk)
    part_out, part_lse = attention(q, k, v, lo, hi)
    kv_lens = (hi - lo).to(torch.int32)  # 0: an empty shard on this rank
    if n > 1:
        # what an attention kernel that skips empty rows may leave there: NaN and any lse.
        # kv_lens marks them empty, so neither is read (world size 1 returns the input
        # untouched, as vLLM's functions do, so there the plain partial stays)
        part_out[kv_lens == 0] = torch.nan
        part_lse[kv_lens == 0] = 7.0
    out = part_out.to(device=device, dtype=dtype)
    lse = part_lse.to(device=device, dtype=torch.float32)
    kv_lens = kv_lens.to(device)

    extra = {} if args.path is None else {"path": args.path}
    hn = H // n
    cases = [  # (name, call, heads this rank keeps, roundings)
        ("cp_lse_ag_out_rs", cpattn.cp_lse_ag_out_rs, slice(rank * hn, (rank + 1) * hn), n + 1),
        ("cp_lse_ag_out_ar", cpattn.cp_lse_ag_out_ar, slice(0, H), n + 1),
        ("cp_lse_a2a_merge", cpattn.cp_lse_a2a_merge, slice(rank * hn, (rank + 1) * hn), 2),
    ]
    if rank == 0:
        print(f"torch_cp: {n} ranks over {backend}, B={B} H={H} D={D} {str(dtype)[6:]} on {device.type}, "
              f"kv_len <= {S} split over the ranks, path={args.path or 'default'}")
    failed = False
    scale = full_out.abs().max().item()
    for name, call, heads, roundings in cases:
        result, result_lse = call(out, lse, group, return_lse=True, kv_lens=kv_lens, **extra)
        want, want_lse = full_out[:, heads], full_lse[:, heads]
        err = ((result.double().cpu() - want).abs().max() / scale).nan_to_num(float("inf"))
        both_inf = torch.isinf(want_lse) & (result_lse.double().cpu() == want_lse)
        lse_err = torch.where(both_inf, 0.0, (result_lse.double().cpu() - want_lse).abs()).nan_to_num(float("inf")).max()
        errs = torch.tensor([err.item(), lse_err.item()], dtype=torch.float64, device=device)
        dist.all_reduce(errs, op=dist.ReduceOp.MAX, group=group)  # the worst rank's errors
        # bf16: rs and ar round each corrected partial and sum in the data dtype (vLLM's
        # semantics); a2a merges in f32 and rounds once
        tol = roundings * EPS[dtype]
        ok = errs[0].item() <= tol and errs[1].item() <= 1e-4
        failed |= not ok
        if rank == 0:
            print(f"  {name}: result {tuple(result.shape)} max_err {errs[0].item():.1e} (tol {tol:.1e}) "
                  f"lse_err {errs[1].item():.1e} {'PASS' if ok else 'FAIL'}")
    # unlike vLLM's functions, which correct cp_attn_out in place, cpattn's leave it as it was
    if not torch.equal(out.view(torch.uint8), part_out.to(device=device, dtype=dtype).view(torch.uint8)):
        print(f"rank {rank}: cp_attn_out was modified")
        failed = True
    if rank == 0:
        print("torch_cp: " + ("FAILED" if failed else "every rank matches unsplit float64 attention"))
    # every rank done before any tears down (gloo can abort a process that exits while a peer
    # still holds its connections)
    dist.barrier(group, device_ids=[local_rank] if backend == "nccl" else None)
    dist.destroy_process_group()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
