"""cpattn's Python API next to the seed's Triton functions on the seed's table shapes: equal
results, kernel time (CUDA-graph replay, the seed's own helper) and host time per call.
Needs torch + triton + a GPU, and seed_triton_bench.py importable (e.g. .peer/ on PYTHONPATH)."""
import json
import os

import torch

import cpattn
import seed_triton_bench as seed


def main():
    rows = []
    bw = seed.copy_bw_gbs()
    for (B, H, D, N) in [(1, 32, 128, 2), (16, 32, 128, 4), (64, 128, 128, 8), (4096, 32, 128, 8), (32768, 32, 128, 8)]:
        out = torch.randn(B, H, D, device="cuda", dtype=torch.bfloat16)
        lses = torch.randn(N, B, H, device="cuda") * 4
        a, la = seed.correct_attn_out(out.clone(), lses, N - 1, None)
        b, lb = cpattn.correct_attn_out(out.clone(), lses, N - 1)
        diff = (a.float() - b.float()).abs().max().item()
        work_s, work_c = out.clone(), out.clone()
        ctx = seed.CPTritonContext()
        t_seed = seed.graph_time_ms(lambda: seed.correct_attn_out(work_s, lses, N - 1, ctx)) * 1e3
        t_cp = seed.graph_time_ms(lambda: cpattn.correct_attn_out(work_c, lses, N - 1)) * 1e3
        h_seed = seed.host_call_us(lambda: seed.correct_attn_out(work_s, lses, N - 1, ctx))
        h_cp = seed.host_call_us(lambda: cpattn.correct_attn_out(work_c, lses, N - 1))
        rows.append(dict(op="correct_attn_out", shape=f"B{B} H{H} D{D} N{N}", max_abs_diff=diff, seed_us=t_seed,
                         cpattn_us=t_cp, seed_host_us=h_seed, cpattn_host_us=h_cp))
    print(f"# copy {bw:.0f} GB/s; kernel time = CUDA-graph replay (seed's helper); host = Python call, no sync")
    print(f"{'op':18s} {'shape':22s} {'seed us':>9s} {'cpattn us':>10s} {'seed host':>10s} {'cpattn host':>12s} {'max|diff|':>10s}")
    for r in rows:
        print(f"{r['op']:18s} {r['shape']:22s} {r['seed_us']:9.2f} {r['cpattn_us']:10.2f} {r['seed_host_us']:10.1f} "
              f"{r['cpattn_host_us']:12.1f} {r['max_abs_diff']:10.2e}")
    with open(os.path.join(os.environ.get("OUT", "."), "python_vs_seed.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
