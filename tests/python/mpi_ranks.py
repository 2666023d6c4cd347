"""Run under mpirun by test_mpi.py: each MPI rank holds one KV shard's partial and calls the
cp_* functions with the mpi4py communicator as cp_group; the result must equal the float64
merge of all shards. Exit status 0 only if every check passes on this rank."""
import sys

import numpy as np
from mpi4py import MPI

import cpattn
from conftest import reference_merge


def main():
    comm = MPI.COMM_WORLD
    n, rank = comm.Get_size(), comm.Get_rank()
    rng = np.random.default_rng(7)  # same on every rank: each rank knows the full inputs
    b, h, d = 5, 2 * n, 24
    outs = rng.standard_normal((n, b, h, d)).astype(np.float32)
    lses = (rng.standard_normal((n, b, h)) * 3).astype(np.float32)
    kv = np.ones((n, b), np.int32)
    kv[:, 0] = 0  # a row empty on every rank
    kv[n - 1, 1] = 0  # a row empty on one rank
    outs[kv == 0] = np.nan
    ref_out, ref_lse, _ = reference_merge(outs, lses, kv_lens=kv)
    heads = slice(rank * (h // n), (rank + 1) * (h // n))
    failures = []
    for name, fn, sl in [("rs", cpattn.cp_lse_ag_out_rs, heads), ("ar", cpattn.cp_lse_ag_out_ar, slice(None)),
                         ("a2a", cpattn.cp_lse_a2a_merge, heads)]:
        out, lse = fn(outs[rank].copy(), lses[rank].copy(), comm, return_lse=True, kv_lens=kv[rank])
        for what, got, want in [("out", out, ref_out[:, sl]), ("lse", lse, ref_lse[:, sl])]:
            if not np.allclose(got, want, rtol=1e-5, atol=1e-5):
                failures.append(f"{name} {what}: max |diff| {np.nanmax(np.abs(got - want))}")
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:  # torch CPU tensors (bf16 included) through the same communicator
        o = torch.from_numpy(np.nan_to_num(outs[rank])).bfloat16()
        got = cpattn.cp_lse_ag_out_rs(o, torch.from_numpy(lses[rank]), comm, kv_lens=torch.from_numpy(kv[rank]))
        if got.dtype != torch.bfloat16 or not np.allclose(got.float().numpy(), ref_out[:, heads], rtol=2e-2, atol=2e-2):
            failures.append("rs torch bf16")
    for f in failures:
        print(f"rank {rank}: FAILED {f}", flush=True)
    print(f"rank {rank}: {'ok' if not failures else 'failed'} (world {n})", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
