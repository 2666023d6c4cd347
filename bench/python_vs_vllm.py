"""cpattn's Python API next to vLLM's Triton functions (vllm.attention.ops.common) on the
shapes of their table: equal results, kernel time (CUDA-graph replay) and host time per
call; then cpattn's host time per call alone for correct_attn_out with return_lse=True and
False, and for merge_attn_states_varlen (split-KV decode: B 1 and 64 rows of 2-16 partials),
which vLLM's Triton functions do not offer. Needs torch + triton + a GPU, and the harness
with vLLM's Triton functions, seed_triton_bench.py, importable (e.g. .peer/ on PYTHONPATH)."""
import json
import os

import torch

import cpattn
import seed_triton_bench as vllm_triton


def compare_correct(rows):
    """correct_attn_out, cpattn's and vLLM's Triton function, on the same inputs."""
    for (B, H, D, N) in [(1, 32, 128, 2), (16, 32, 128, 4), (64, 128, 128, 8), (4096, 32, 128, 8), (32768, 32, 128, 8)]:
        out = torch.randn(B, H, D, device="cuda", dtype=torch.bfloat16)
        lses = torch.randn(N, B, H, device="cuda") * 4
        a, _ = vllm_triton.correct_attn_out(out.clone(), lses, N - 1, None)
        b, _ = cpattn.correct_attn_out(out.clone(), lses, N - 1)
        diff = (a.float() - b.float()).abs().max().item()
        work_v, work_c = out.clone(), out.clone()
        ctx = vllm_triton.CPTritonContext()
        t_vllm = vllm_triton.graph_time_ms(lambda: vllm_triton.correct_attn_out(work_v, lses, N - 1, ctx)) * 1e3
        t_cp = vllm_triton.graph_time_ms(lambda: cpattn.correct_attn_out(work_c, lses, N - 1)) * 1e3
        h_vllm = vllm_triton.host_call_us(lambda: vllm_triton.correct_attn_out(work_v, lses, N - 1, ctx))
        h_cp = vllm_triton.host_call_us(lambda: cpattn.correct_attn_out(work_c, lses, N - 1))
        rows.append(dict(op="correct_attn_out", shape=f"B{B} H{H} D{D} N{N}", max_abs_diff=diff, vllm_triton_us=t_vllm,
                         cpattn_us=t_cp, vllm_triton_host_us=h_vllm, cpattn_host_us=h_cp))


def host_times(rows):
    """cpattn alone: host time per call (no sync in the loop) and kernel time."""
    for B in (1, 64):
        H, D, N = 32, 128, 4
        out = torch.randn(B, H, D, device="cuda", dtype=torch.bfloat16)
        lses = torch.randn(N, B, H, device="cuda") * 4
        for return_lse in (True, False):
            call = lambda: cpattn.correct_attn_out(out, lses, N - 1, return_lse=return_lse)  # noqa: E731
            rows.append(dict(op=f"correct return_lse={return_lse}", shape=f"B{B} H{H} D{D} N{N}",
                             cpattn_us=vllm_triton.graph_time_ms(call) * 1e3,
                             cpattn_host_us=vllm_triton.host_call_us(call)))
        g = torch.Generator().manual_seed(B)
        counts = torch.randint(2, 17, (B,), generator=g)  # 2-16 partials per row
        offsets = torch.zeros(B + 1, dtype=torch.int32)
        offsets[1:] = torch.cumsum(counts, 0)
        partials = int(offsets[-1])
        outs = torch.randn(partials, H, D, device="cuda", dtype=torch.bfloat16)
        part_lses = torch.randn(partials, H, device="cuda") * 4
        offsets = offsets.cuda()
        for return_lse in (True, False):
            call = lambda: cpattn.merge_attn_states_varlen(outs, part_lses, offsets, return_lse=return_lse)  # noqa: E731
            rows.append(dict(op=f"varlen return_lse={return_lse}", shape=f"B{B} H{H} D{D} P{partials}",
                             cpattn_us=vllm_triton.graph_time_ms(call) * 1e3,
                             cpattn_host_us=vllm_triton.host_call_us(call)))


def main():
    rows = []
    bw = vllm_triton.copy_bw_gbs()
    compare_correct(rows)
    host_times(rows)
    print(f"# copy {bw:.0f} GB/s; kernel time = CUDA-graph replay; host = Python call, no sync; "
          f"vLLM = vLLM's Triton functions")
    print(f"{'op':26s} {'shape':22s} {'vLLM us':>9s} {'cpattn us':>10s} {'vLLM host':>10s} {'cpattn host':>12s} "
          f"{'max|diff|':>10s}")
    na = f"{'-':>9s}"
    for r in rows:
        vllm_us = f"{r['vllm_triton_us']:9.2f}" if "vllm_triton_us" in r else na
        vllm_host = f"{r['vllm_triton_host_us']:10.1f}" if "vllm_triton_host_us" in r else f"{'-':>10s}"
        diff = f"{r['max_abs_diff']:10.2e}" if "max_abs_diff" in r else f"{'-':>10s}"
        print(f"{r['op']:26s} {r['shape']:22s} {vllm_us} {r['cpattn_us']:10.2f} {vllm_host} {r['cpattn_host_us']:12.1f} "
              f"{diff}")
    with open(os.path.join(os.environ.get("OUT", "."), "python_vs_vllm.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
