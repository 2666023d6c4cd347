#!/usr/bin/env python3
"""PNG plots of cpattn's benchmarks next to the peers measured on the same GPU model.

    python3 bench/plot.py                                   # every plot the data at hand allows
    python3 bench/plot.py --json correct.json merge.json    # + cpattn rows from `cpattn bench --json`
    python3 bench/plot.py --cp-text docs/plots/data/bench_cp_2xH200_2026-12-01.txt --out docs/plots

Plots (written to --out, default docs/plots):
  bandwidth_h200.png  time and % of copy against working-set bytes, correct_attn_out next to
                      vLLM's Triton functions and merge_attn_states next to FlashInfer's MergeStates
  decode_h200.png     decode latency (batches of B <= 16 rows), the same peers, the launch floor
  multigpu_cp.png     the cp functions' whole call against the raw NCCL collectives alone, per
                      transport, from the text table of `cpattn bench --op cp-rs|cp-ar|cp-a2a`

The peers' figures are the ones in PEERS below (NVIDIA H200, 2026-11-30). cpattn's come only
from the files given: without --json the single-GPU plots show the peers alone. % of copy is
taken against one reference for every series, --copy-gbs (default: cudaMemcpyAsync
device-to-device on H200, 4245 GB/s read + write), so cpattn's rows are recomputed from their
bytes and time rather than read from their own run's copy column; the footer gives the copy
reference each JSON file's run measured (its "copy_gbs").

Needs matplotlib (pip install matplotlib).
"""
import argparse
import json
import math
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# ---------------------------------------------------------------- the peers
PEER_DEVICE = "NVIDIA H200"
PEER_DATE = "2026-11-30"
PEER_NOTE = "bf16 data, f32 LSEs, kernel time by CUDA-graph replay"
VLLM = "vLLM's Triton functions"
FLASHINFER = "FlashInfer's MergeStates"
# (source, op, B, H, D, N, microseconds: a value or a (low, high) range)
PEERS = [
    (VLLM, "correct", 1, 32, 128, 2, 1.30),
    (VLLM, "correct", 16, 32, 128, 4, (1.72, 1.77)),
    (VLLM, "correct", 64, 128, 128, 8, 6.43),
    (VLLM, "correct", 4096, 32, 128, 8, 80.9),
    (VLLM, "correct", 32768, 32, 128, 8, 725.0),
    (VLLM, "correct", 16384, 128, 128, 4, 1280.0),
    (FLASHINFER, "merge", 1, 32, 128, 2, 1.65),
    (FLASHINFER, "merge", 16, 32, 128, 4, 2.06),
    (FLASHINFER, "merge", 64, 32, 128, 8, 3.14),
    (FLASHINFER, "merge", 1, 128, 512, 8, 2.18),
    (FLASHINFER, "merge", 256, 32, 512, 8, 20.85),
    (FLASHINFER, "merge", 4096, 32, 128, 8, 74.56),
    (FLASHINFER, "merge", 32768, 32, 128, 8, 566.79),
    (FLASHINFER, "merge", 4096, 32, 128, 2, 26.77),
    (FLASHINFER, "merge", 32768, 32, 128, 2, 196.46),
    (FLASHINFER, "merge", 32768, 16, 128, 2, 97.18),
    (FLASHINFER, "merge", 8192, 32, 64, 16, 140.83),
    (FLASHINFER, "merge", 8192, 32, 256, 3, 133.48),
    (FLASHINFER, "merge", 2048, 16, 128, 2, 4.77),
]
COPY_GBS = 4245.0  # cudaMemcpyAsync device-to-device on H200, read + write (a plain copy kernel: ~3930)
LAUNCH_FLOOR_US = 1.1  # one tiny kernel per CUDA-graph step on H200
DECODE_MAX_BATCH = 16  # decode: a few rows per step
DECODE_TARGET_US = 1.5  # DESIGN.md: decode sizes with ordinary launches
OPS = {"correct": "correct_attn_out", "merge": "merge_attn_states"}
PEER_OF = {"correct": VLLM, "merge": FLASHINFER}
COLORS = {VLLM: "tab:orange", FLASHINFER: "tab:green", "cpattn": "tab:blue"}


def working_set_bytes(op, B, H, D, N, data_bytes=2):
    """Bytes read + written, as `cpattn bench` counts them: correct reads and writes out
    [B, H, D] and reads N LSEs and writes one per row; merge reads N partials and writes one."""
    rows = B * H
    data = (N + 1 if op == "merge" else 2) * rows * D * data_bytes
    return data + (N + 1) * rows * 4


def shape_name(B, H, D, N):
    return f"B{B} H{H} D{D} N{N}"


def parse_shape(text):
    """'B1 H32 D128 N2' -> (1, 32, 128, 2); None for other shapes (pack rows)."""
    m = re.fullmatch(r"B(\d+) H(\d+) D(\d+) N(\d+)", text.strip())
    return tuple(int(g) for g in m.groups()) if m else None


def peer_rows():
    rows = []
    for source, op, B, H, D, N, us in PEERS:
        lo, hi = us if isinstance(us, tuple) else (us, us)
        rows.append({"source": source, "op": op, "shape": shape_name(B, H, D, N), "bytes": working_set_bytes(op, B, H, D, N),
                     "us": (lo + hi) / 2, "us_lo": lo, "us_hi": hi})
    return rows


def cpattn_rows(paths):
    """Rows of `cpattn bench --json` files: correct and merge rows that ran (skipped rows and
    pack/unpack rows are left out). Returns (rows, [device description per file]); each row
    carries its file's copy reference ("copy_gbs", absent from older files)."""
    rows, devices = [], []
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        m = re.search(r"device (.+?) dtype (\S+)", doc.get("config", ""))
        device, dtype = (m.group(1), m.group(2)) if m else ("unknown device", "?")
        devices.append(f"{device}, {dtype}" + ("" if PEER_DEVICE in device else ": not the peers' device"))
        if PEER_DEVICE not in device:
            print(f"warning: {path} was measured on {device}, the peers on {PEER_DEVICE}", file=sys.stderr)
        for r in doc.get("rows", []):
            if r.get("op") not in OPS or r.get("time_us") is None or parse_shape(r.get("shape", "")) is None:
                continue
            rows.append({"source": "cpattn", "op": r["op"], "shape": r["shape"].strip(), "bytes": float(r["bytes"]),
                         "us": float(r["time_us"]), "us_lo": float(r["time_us"]), "us_hi": float(r["time_us"]),
                         "wrong": int(r.get("wrong", 0)), "file": os.path.basename(path),
                         "copy_gbs": doc.get("copy_gbs")})
    return rows, devices


def pct_copy(row, copy_gbs):
    return 100.0 * row["bytes"] / row["us"] / 1e3 / copy_gbs


def own_copy_note(rows):
    """'; their runs' own copy reference: 4211 GB/s (file), ...' from the files' "copy_gbs"."""
    refs = {}
    for r in rows:
        if r.get("copy_gbs"):
            refs[r["file"]] = r["copy_gbs"]
    if not refs:
        return ""
    return "; their runs' own copy reference: " + ", ".join(f"{gbs:.0f} GB/s ({f})" for f, gbs in sorted(refs.items()))


def human_bytes(x, _pos=None):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if x >= size:
            v = x / size
            return f"{v:.0f} {unit}" if v >= 10 or v == int(v) else f"{v:.1f} {unit}"
    return f"{x:.0f} B"


def footer(fig, lines):
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=7, color="0.35", va="bottom", ha="left")


def bytes_ticks(ax, lo, hi):
    """Ticks at powers of 16 bytes (4 KiB, 64 KiB, 1 MiB, ...) between lo and hi."""
    ticks = [16 ** k * 4 for k in range(2, 10) if lo <= 16 ** k * 4 <= hi]
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(human_bytes))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def annotate_shapes(ax, rows):
    """Numbers the points (in order of bytes) and lists the shapes by number in the lower right
    corner: the peers' shapes crowd at large sizes, where names beside the points would overlap."""
    key = []
    for i, r in enumerate(sorted(rows, key=lambda r: r["bytes"]), 1):
        ax.annotate(str(i), (r["bytes"], r["us"]), textcoords="offset points", xytext=(5, -2), fontsize=6.5,
                    color="0.25")
        key.append(f"{i:>2}  {r['shape']}")
    ax.text(0.985, 0.03, "\n".join(key), transform=ax.transAxes, ha="right", va="bottom", fontsize=6.3,
            family="monospace", color="0.25", bbox={"boxstyle": "round", "fc": "white", "ec": "0.8", "alpha": 0.9})


# ---------------------------------------------------------------- (a) bandwidth
def plot_bandwidth(peers, ours, devices, copy_gbs, out):
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.6))
    for i, op in enumerate(("correct", "merge")):
        ax_t, ax_p = axes[i]
        series = [(PEER_OF[op], [r for r in peers if r["op"] == op])]
        if ours:
            series.append((f"cpattn ({'; '.join(sorted(set(devices)))})", [r for r in ours if r["op"] == op]))
        for label, rows in series:
            if not rows:
                continue
            rows = sorted(rows, key=lambda r: r["bytes"])
            color = COLORS["cpattn" if label.startswith("cpattn") else label]
            marker = "o" if label.startswith("cpattn") else "s"
            xs = [r["bytes"] for r in rows]
            ax_t.plot(xs, [r["us"] for r in rows], marker=marker, ls="none", color=color, label=label, ms=6)
            ax_p.plot(xs, [pct_copy(r, copy_gbs) for r in rows], marker=marker, ls="none", color=color, label=label, ms=6)
            if not label.startswith("cpattn"):
                annotate_shapes(ax_t, rows)
        ax_t.set(xscale="log", yscale="log", ylabel="kernel time (us)", title=f"{OPS[op]}: time")
        ax_p.set(xscale="log", ylabel=f"% of copy ({copy_gbs:.0f} GB/s)", title=f"{OPS[op]}: % of copy bandwidth",
                 ylim=(0, 120))
        ax_p.axhline(90 if op == "correct" else 100, color="0.5", ls=":", lw=1)
        ax_p.text(ax_p.get_xlim()[0], 88 if op == "correct" else 98,  # below the line, clear of the legend
                  " target >= 90% at >= 64 MiB" if op == "correct" else " copy bandwidth", fontsize=7, color="0.4",
                  va="top")
        ax_p.axvspan(50 << 20, 2 ** 40, color="0.93", zorder=0)
        ax_p.text(64 << 20, 4, "  past L2 (~50 MiB)", fontsize=7, color="0.4")
        for ax in (ax_t, ax_p):
            ax.set_xlabel("working set (bytes read + written)")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=8, loc="upper left")
    for ax in axes.flat:
        lo = min(r["bytes"] for r in peers + ours) / 2
        hi = max(r["bytes"] for r in peers + ours) * 3
        ax.set_xlim(lo, hi)
        bytes_ticks(ax, lo, hi)
    fig.suptitle(f"Single-GPU ops against the peers ({PEER_DEVICE}, {PEER_NOTE})", fontsize=11)
    notes = [f"Peers: {VLLM} (correct_attn_out) and {FLASHINFER} (FlashInfer 0.7.2, base-2 LSE), measured on "
             f"{PEER_DEVICE} on {PEER_DATE}. % of copy for every series: bytes / time against {copy_gbs:.0f} GB/s.",
             "cpattn: " + ("the rows of " + ", ".join(sorted({r['file'] for r in ours})) + own_copy_note(ours) if ours
                           else "no cpattn JSON given (bench/plot.py --json FILE): the peers alone.")]
    footer(fig, notes)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(out, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- (b) decode latency
def plot_decode(peers, ours, devices, out):
    # the shapes the peers were measured on: cpattn's rows of other shapes have nothing beside them
    compared = {(r["op"], r["shape"]) for r in peers}
    small = [r for r in peers + ours if parse_shape(r["shape"])[0] <= DECODE_MAX_BATCH and (r["op"], r["shape"]) in compared]
    groups = []  # (op, shape), by op then bytes
    for r in sorted(small, key=lambda r: (r["op"], r["bytes"])):
        if (r["op"], r["shape"]) not in groups:
            groups.append((r["op"], r["shape"]))
    fig, ax = plt.subplots(figsize=(max(8.0, 1.5 * len(groups) + 2), 5.4))
    labelled = set()
    for k, (op, shape) in enumerate(groups):
        here = [r for r in small if (r["op"], r["shape"]) == (op, shape)]
        here.sort(key=lambda r: r["source"] == "cpattn")  # the peer first, cpattn beside it
        width = 0.7 / len(here)
        for j, r in enumerate(here):
            x = k - 0.35 + width * (j + 0.5)
            err = [[r["us"] - r["us_lo"]], [r["us_hi"] - r["us"]]] if r["us_hi"] > r["us_lo"] else None
            label = f"cpattn ({'; '.join(sorted(set(devices)))})" if r["source"] == "cpattn" else r["source"]
            ax.bar(x, r["us"], width * 0.9, color=COLORS[r["source"]], yerr=err, capsize=3,
                   label=None if label in labelled else label)
            labelled.add(label)
            ax.text(x, r["us_hi"] + 0.03, f"{r['us']:.2f}", ha="center", va="bottom", fontsize=7.5)
    ax.axhline(LAUNCH_FLOOR_US, color="0.3", ls="--", lw=1, label=f"launch floor: 1 tiny kernel per graph step ({LAUNCH_FLOOR_US} us)")
    ax.axhline(DECODE_TARGET_US, color="tab:red", ls=":", lw=1.2,
               label=f"cpattn's target with ordinary launches ({DECODE_TARGET_US} us)")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{OPS[op]}\n{shape}\n{human_bytes(working_set_bytes(op, *parse_shape(shape)))}"
                        for op, shape in groups], fontsize=7.5)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylabel("kernel time (us), CUDA-graph replay")
    ax.set_ylim(0, max(r["us_hi"] for r in small) * 1.45)
    ax.set_title(f"Decode latency, batches of B <= {DECODE_MAX_BATCH} rows ({PEER_DEVICE}, bf16)", fontsize=11)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, axis="y", alpha=0.3)
    footer(fig, [f"Peers: {VLLM} and {FLASHINFER}, measured on {PEER_DEVICE} on {PEER_DATE} ({PEER_NOTE}).",
                 f"The bar of {VLLM} at B16 H32 D128 N4 is the middle of its 1.72-1.77 us.",
                 "cpattn: " + ("from " + ", ".join(sorted({r['file'] for r in ours})) + ", on the shapes the peers "
                               "were measured on" if ours else
                               "no cpattn JSON given (bench/plot.py --json FILE): the peers alone.")])
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- (c) multi-GPU
def parse_cp_text(path):
    """Tables printed by `cpattn bench --op cp-rs|cp-ar|cp-a2a`: a '# cpattn bench --op X ...'
    line, a '#  shape path bytes call(us) ...' header, rows. Returns {op: {"config", "rows"}};
    each row has shape, path (direct, collectives, auto: ...), bytes and the header's numeric
    columns by name. Rows that did not run (no numbers) are left out."""
    tables, current, columns = {}, None, None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"# cpattn bench --op (cp-\w+) (.*)", line)
            if m:
                current = tables.setdefault(m.group(1), {"config": m.group(2).split(" | ")[0], "rows": []})
                columns = None
                continue
            if line.startswith("#") and "shape" in line and "path" in line and current is not None:
                names = line[1:].split()
                columns = names[names.index("path") + 1:]
                continue
            if line.startswith("#") or not line.strip() or current is None or columns is None:
                continue
            tokens = line.split()
            if len(tokens) < len(columns) + 2:
                continue
            values = tokens[-len(columns):]
            try:
                numbers = [float("nan") if v == "-" else float(v) for v in values]
            except ValueError:
                continue  # a row that did not run
            head = tokens[:-len(columns)]
            shape = [t for t in head if re.fullmatch(r"[BHDN]\d+", t)]
            path_words = head[len(shape):]
            row = dict(zip(columns, numbers))
            row["shape"] = " ".join(shape)
            row["path"] = re.sub(r"\s*\[\d+\]$", "", " ".join(path_words))
            current["rows"].append(row)
    return tables


def plot_multigpu(tables, source_name, out):
    ops = [op for op in ("cp-rs", "cp-ar", "cp-a2a") if op in tables]
    names = {"cp-rs": "cp_lse_ag_out_rs", "cp-ar": "cp_lse_ag_out_ar", "cp-a2a": "cp_lse_a2a_merge"}
    fig, axes = plt.subplots(2, len(ops), figsize=(5.4 * len(ops), 8.6), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1.4]})
    styles = [  # (row path, column, label, color, line)
        ("direct", "call(us)", "direct: whole call", "tab:blue", "-"),
        ("direct", "graph(us)", "direct: in a CUDA graph", "tab:blue", ":"),
        ("collectives", "call(us)", "collectives: whole call", "tab:orange", "-"),
        ("collectives", "graph(us)", "collectives: in a CUDA graph", "tab:orange", ":"),
        ("collectives", "coll(us)", "raw NCCL collectives alone", "black", "--"),
    ]
    family_marker = ["o", "^", "s", "D", "v"]
    for j, op in enumerate(ops):
        rows = tables[op]["rows"]
        families = []  # head shape (H, D) of the rows, in order of appearance
        for r in rows:
            key = " ".join(t for t in r["shape"].split() if t[0] in "HD")
            r["family"] = key
            if key not in families:
                families.append(key)
        ax, ax_r = axes[0][j], axes[1][j]
        for path, column, label, color, line in styles:
            for f, family in enumerate(families):
                pts = sorted((r for r in rows if r["path"] == path and r["family"] == family and column in r
                              and not math.isnan(r[column])), key=lambda r: r["bytes"])
                if not pts:
                    continue
                marker = family_marker[f % len(family_marker)]
                ax.plot([r["bytes"] for r in pts], [r[column] for r in pts], line, marker=marker, color=color,
                        label=label if f == 0 else None, ms=4.5 if column == "call(us)" else 3, lw=1.3)
                if column == "call(us)":
                    ax_r.plot([r["bytes"] for r in pts], [r["call(us)"] / r["coll(us)"] for r in pts], line,
                              marker=marker, color=color, ms=4.5, lw=1.3, label=path if f == 0 else None)
        lo, hi = min(r["bytes"] for r in rows), max(r["bytes"] for r in rows)
        if op == "cp-rs":
            ax.axhline(8, color="tab:red", ls=":", lw=1)
            ax.text(hi, 8.3, "target at B1 H128 D512: 8 us ", fontsize=7, color="tab:red", ha="right")
        ax.set(xscale="log", yscale="log", ylabel="time per call (us), slowest rank", title=names[op])
        ax.grid(True, which="major", alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        shape_handles = [matplotlib.lines.Line2D([], [], ls="none", marker=family_marker[f % len(family_marker)],
                                                 color="0.3", label=family) for f, family in enumerate(families)]
        ax.legend(handles + shape_handles, labels + [h.get_label() for h in shape_handles], fontsize=7.5,
                  loc="upper left")
        ax_r.axhline(1.0, color="black", ls="--", lw=1)
        ax_r.axhline(1.05, color="tab:red", ls=":", lw=1)
        ax_r.text(lo, 1.08, " target <= 1.05x at large sizes", fontsize=7, color="tab:red")
        ax_r.set(xscale="log", ylabel="call / raw collectives", xlabel="this rank's attention output (bytes)")
        ax_r.grid(True, which="major", alpha=0.3)
        ax_r.legend(fontsize=7.5, loc="best")
        for a in (ax, ax_r):
            a.set_xlim(lo / 1.6, hi * 1.6)
            bytes_ticks(a, lo / 1.6, hi * 1.6)
    config = tables[ops[0]]["config"]
    m = re.search(r"comm (\S+) ranks (\d+) device (.+?) dtype (\S+)", config)
    who = f"{m.group(2)} ranks, {m.group(1)}, {m.group(3)}, {m.group(4)}" if m else config
    fig.suptitle(f"cp functions across GPUs: the whole call against the raw collectives ({who})", fontsize=11)
    footer(fig, [f"Data: {source_name}. Whole call: median wall time of one call and a stream sync; in a CUDA graph: "
                 "20 calls captured and replayed, per call; raw collectives: the NCCL collectives the",
                 "collectives path issues, timed alone on buffers of the same sizes. B1-B2048 per head shape, bf16 data, "
                 "f32 LSEs; the 'auto' rows are left out (they repeat the path auto took)."])
    fig.tight_layout(rect=(0, 0.045, 1, 0.97))
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", nargs="*", default=[], help="`cpattn bench --op correct|merge --json` files")
    parser.add_argument("--cp-text", nargs="*", default=None,
                        help="text output of `cpattn bench --op cp-rs|cp-ar|cp-a2a` (default: the newest "
                             "docs/plots/data/bench_cp_*.txt)")
    parser.add_argument("--out", default=None, help="output folder (default: docs/plots)")
    parser.add_argument("--copy-gbs", type=float, default=COPY_GBS, help="copy bandwidth for %% of copy (GB/s)")
    args = parser.parse_args(argv)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = args.out or os.path.join(root, "docs", "plots")
    os.makedirs(out, exist_ok=True)

    peers = peer_rows()
    ours, devices = cpattn_rows(args.json)
    wrong = sum(r["wrong"] for r in ours)
    if wrong:
        print(f"warning: the cpattn rows hold {wrong} wrong values", file=sys.stderr)
    plot_bandwidth(peers, ours, devices, args.copy_gbs, os.path.join(out, "bandwidth_h200.png"))
    plot_decode(peers, ours, devices, os.path.join(out, "decode_h200.png"))
    written = ["bandwidth_h200.png", "decode_h200.png"]

    cp_files = args.cp_text
    if cp_files is None:
        data = os.path.join(root, "docs", "plots", "data")
        found = sorted(f for f in os.listdir(data) if f.startswith("bench_cp_") and f.endswith(".txt")) \
            if os.path.isdir(data) else []
        cp_files = [os.path.join(data, found[-1])] if found else []
    tables = {}
    for path in cp_files:
        tables.update(parse_cp_text(path))
    if tables:
        plot_multigpu(tables, ", ".join(os.path.relpath(p, root) for p in cp_files), os.path.join(out, "multigpu_cp.png"))
        written.append("multigpu_cp.png")
    for name in written:
        print(os.path.join(out, name))
    print(f"cpattn rows: {len(ours)} from {len(args.json)} JSON file(s); peers: {len(peers)} rows; "
          f"cp tables: {', '.join(sorted(tables)) or 'none'}")


if __name__ == "__main__":
    main()
