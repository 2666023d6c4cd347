"""Walks the CLI rows of docs/errors.md: runs each command as written (with this build's
cpattn) and checks that it fails with exit status 2 and exactly the documented first line of
stderr, where `…` stands for a figure of the machine (the memory available).
usage: python3 check_error_table.py <path to cpattn> <path to docs/errors.md>"""
import re
import shlex
import subprocess
import sys

ROW = re.compile(r"^\| `(cli\.[^`]+)` \| `([^`]+)` \| (.*) \| `(.*)` \|$")


def main(cli, table):
    rows = [m.groups() for m in map(ROW.match, open(table, encoding="utf-8")) if m]
    if not rows:
        print(f"no CLI rows found in {table}")
        return 1
    failures = 0
    for row_id, command, _, want in rows:
        args = shlex.split(command)
        proc = subprocess.run([cli] + args[1:], capture_output=True, text=True, timeout=60)
        got = (proc.stderr.splitlines() or [""])[0]
        pattern = ".+?".join(re.escape(part) for part in want.split("…"))
        if proc.returncode != 2 or not re.fullmatch(pattern, got):
            failures += 1
            print(f"FAIL {row_id}: `{command}` exited {proc.returncode}\n  want: {want}\n  got:  {got}")
        else:
            print(f"ok   {row_id}: exit {proc.returncode}")
    print(f"{len(rows) - failures} of {len(rows)} CLI rows as documented")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
