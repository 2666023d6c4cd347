"""Runs vLLM's Triton functions on the shapes of cpattn's own bench JSON files and writes one
table with both: cpattn's time, GB/s, % of copy and error next to vLLM's time for the same
shape, in the same device call. Shapes vLLM's Triton functions cannot run (N or D not a power of two: its
kernel does not compile; merge: it has no such kernel) get a dash.

  usage: PYTHONPATH=.peer python3 bench/vllm_join.py [--pdl OUT/bench_correct_pdl.json] OUT/bench_correct.json ... > table.md
--pdl: the rows of a `cpattn bench --pdl` run, added as two more columns (time with
programmatic dependent launches, and its speed-up over vLLM's) where the shape matches.
Needs torch + triton + a GPU and seed_triton_bench.py importable.
"""
import json
import re
import sys

import torch

import seed_triton_bench as vllm_triton  # the harness of vLLM's Triton functions


def pow2(x):
    return x > 0 and x & (x - 1) == 0


def vllm_correct_us(B, H, D, N):
    out = torch.randn(B, H, D, device="cuda", dtype=torch.bfloat16)
    lses = torch.randn(N, B, H, device="cuda") * 4
    ctx = vllm_triton.CPTritonContext()
    return vllm_triton.graph_time_ms(lambda: vllm_triton.correct_attn_out(out, lses, N - 1, ctx)) * 1e3


def vllm_pack_us(pack, B, L, F, T):
    # same B, longest length and total as cpattn's row (lengths 1..L, one of them L)
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, L + 1, (B,), generator=g)
    lengths[0] = L
    while int(lengths.sum()) != T and B > 1:  # nudge to the same token total
        i = int(torch.randint(1, B, (1,), generator=g))
        step = 1 if int(lengths.sum()) < T else -1
        if 1 <= int(lengths[i]) + step <= L:
            lengths[i] += step
    lengths = lengths.cuda()
    x = torch.randn(int(lengths.sum()), F, device="cuda", dtype=torch.bfloat16)
    if pack:
        fn = lambda: vllm_triton.pack_seq_triton(x, lengths)
    else:
        p = vllm_triton.pack_seq_triton(x, lengths)
        fn = lambda: vllm_triton.unpack_seq_triton(p, lengths)
    import triton
    # vLLM's pack/unpack read lengths.max()/sum() on the host: not capturable, so do_bench
    return triton.testing.do_bench(fn, warmup=10, rep=100, return_mode="median") * 1e3


def main(paths):
    pdl = {}
    if paths[:1] == ["--pdl"]:
        pdl = {(r["op"], r["shape"]): r["time_us"] for r in json.load(open(paths[1]))["rows"] if r.get("time_us")}
        paths = paths[2:]
    extra = " cpattn --pdl us | speed-up --pdl |" if pdl else ""
    print("| op | shape | cpattn us | GB/s | % copy | max err | wrong | vLLM's Triton us | speed-up |" + extra)
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |" + " --- | --- |" * bool(pdl))
    for path in paths:
        doc = json.load(open(path))
        for r in doc["rows"]:
            if r.get("time_us") is None:
                continue
            shape, vllm_us = r["shape"], None
            m = re.match(r"B(\d+) H(\d+) D(\d+) N(\d+)", shape)
            try:
                if r["op"] == "correct" and m:
                    B, H, D, N = map(int, m.groups())
                    if pow2(N) and pow2(D) and r["bytes"] < 8e9:
                        vllm_us = vllm_correct_us(B, H, D, N)
                p = re.match(r"B(\d+) Lmax(\d+) F(\d+) tok(\d+)", shape)
                if r["op"] in ("pack", "unpack") and p and r["bytes"] < 2e9:
                    vllm_us = vllm_pack_us(r["op"] == "pack", *map(int, p.groups()))
            except Exception as e:  # vLLM's kernel failing on a shape is a result, not a crash
                print(f"<!-- vLLM's Triton failed on {r['op']} {shape}: {str(e).splitlines()[0][:120]} -->")
            torch.cuda.empty_cache()
            s = "—" if vllm_us is None else f"{vllm_us:.2f}"
            x = "—" if vllm_us is None else f"{vllm_us / r['time_us']:.2f}x"
            cells = ""
            if pdl:
                t = pdl.get((r["op"], shape))
                cells = " — | — |" if t is None else f" {t:.2f} | " + ("—" if vllm_us is None else f"{vllm_us / t:.2f}x") + " |"
            print(f"| {r['op']} | {shape} | {r['time_us']:.2f} | {r['gbs']:.0f} | {r['pct_copy']:.0f}% | "
                  f"{r['max_err']:.1e} | {r['wrong']} | {s} | {x} |" + cells, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
