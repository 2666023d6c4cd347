#!/usr/bin/env python3
"""Every quoted #include points down the layers of docs/architecture.md ("What each folder
may include"). Prints each include that breaks a rule and exits 1; exits 0 when none does.
usage: check_layers.py <source dir>"""
import os
import re
import sys

PUBLIC = r"cpattn/"
BACKEND = r"\.\./backend/"
# folder -> what its quoted includes may start with (besides a file of the folder itself)
RULES = {
    "include/cpattn": [PUBLIC],
    "src/backend": [PUBLIC],
    "src/cpu": [PUBLIC, BACKEND],
    "src/cuda": [PUBLIC, BACKEND],
    "src/comm": [PUBLIC, BACKEND],
    "src/reference": [PUBLIC, BACKEND],
    "src/core": [PUBLIC, BACKEND, r"\.\./cpu/backend\.hpp$", r"\.\./cuda/backend\.hpp$"],
    "tools/cpattn": [PUBLIC],
    "python/src": [PUBLIC],
    "examples": [PUBLIC],
}
SOURCES = (".hpp", ".cpp", ".cu", ".cuh", ".inc", ".h")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def main(root):
    broken = 0
    for folder, allowed in RULES.items():
        base = os.path.join(root, folder)
        if not os.path.isdir(base):
            continue
        for name in sorted(os.listdir(base)):
            if not name.endswith(SOURCES):
                continue
            path = os.path.join(base, name)
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = m.group(1)
                    own = "/" not in target and os.path.exists(os.path.join(base, target))
                    if own or any(re.match(rule, target) for rule in allowed):
                        continue
                    print(f"{folder}/{name}:{number}: #include \"{target}\" points out of what {folder}/ may include")
                    broken += 1
    if broken:
        print(f"{broken} include(s) break the layering of docs/architecture.md")
        return 1
    print("every include points down the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
