"""Fails when code that builds user-facing messages embeds source paths (__FILE__, __LINE__,
std::source_location, __builtin_FILE): users get "src/comm/nccl_comm.cpp:77" in an error and
cannot act on it. Errors name the argument or the call instead (docs/errors.md).
usage: python3 check_no_source_paths.py <repository root>"""
import pathlib
import re
import sys

DIRS = ("include", "src", "tools", "python/src")
PATTERN = re.compile(r"__FILE__|__LINE__|source_location|__builtin_FILE|__builtin_LINE")


def main(root):
    root = pathlib.Path(root)
    hits = []
    for d in DIRS:
        for path in sorted((root / d).rglob("*")):
            if path.suffix not in {".hpp", ".cpp", ".h", ".cu", ".cuh", ".in"}:
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                if PATTERN.search(line):
                    hits.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    for h in hits:
        print("source path in user-facing code: " + h)
    print(f"{len(hits)} places embed source paths in {', '.join(DIRS)}")
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
