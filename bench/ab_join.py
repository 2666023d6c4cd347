"""Joins the before/after sweeps of bench/device_ab.sh into one markdown table: per op and
shape, the time before and after, after / before, and after's % of the copy reference and of a
copy of the row's own size (rows of 8 MiB and more, where the bench measured it).

  usage: python3 bench/ab_join.py OUT_DIR [ops...]   (reads OUT_DIR/ab_<op>_{before,after}.json)
"""
import json
import os
import sys


def rows_by_shape(path):
    """Rows by (op, shape, n): n counts earlier rows of the same name (a sweep may repeat a
    shape name with another dtype), so the n-th row of a name meets the n-th of the other side."""
    with open(path) as f:
        data = json.load(f)
    rows, seen = {}, {}
    for r in data["rows"]:
        name = (r["op"], r["shape"])
        seen[name] = seen.get(name, -1) + 1
        if r.get("time_us") is not None:
            rows[name + (seen[name],)] = r
    return data, rows


def main():
    out = sys.argv[1]
    ops = sys.argv[2:] or ["correct", "merge", "pack", "unpack"]
    worst = []
    for op in ops:
        paths = [os.path.join(out, f"ab_{op}_{side}.json") for side in ("before", "after")]
        if not all(os.path.exists(p) for p in paths):
            print(f"\n{op}: missing {' or '.join(p for p in paths if not os.path.exists(p))}")
            continue
        (_, before), (after_data, after) = rows_by_shape(paths[0]), rows_by_shape(paths[1])
        print(f"\n### {op}\n\n{after_data['config']}\n")
        print("| shape | before us | after us | after / before | after % of copy | after % of a copy of its size |")
        print("| --- | --- | --- | --- | --- | --- |")
        for key, a in after.items():
            b = before.get(key)
            ratio = a["time_us"] / b["time_us"] if b else None
            if ratio:
                worst.append((ratio, op, key[1]))
            size_copy = a.get("pct_size_copy")
            size_copy = f"{size_copy:.1f}" if size_copy is not None else "-"
            print(f"| {key[1]} | {b['time_us']:.2f} | {a['time_us']:.2f} | {ratio:.3f} | {a['pct_copy']:.1f} | {size_copy} |" if b else
                  f"| {key[1]} | - | {a['time_us']:.2f} | - | {a['pct_copy']:.1f} | {size_copy} |")
    worst.sort(reverse=True)
    print("\nSlowest after / before: " + ", ".join(f"{op} {shape} {r:.3f}" for r, op, shape in worst[:5]))


if __name__ == "__main__":
    main()
