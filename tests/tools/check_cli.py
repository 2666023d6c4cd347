"""Runs the cpattn CLI once as a user would and checks what a user sees: the exit status and
what stdout and stderr say (CTest's PASS_REGULAR_EXPRESSION ignores the exit status).
usage: python3 check_cli.py [--exit N] [--stdout RE] [--stderr RE] [--address-space BYTES]
                            [--env NAME=VALUE ...] -- <path to cpattn> <arguments>...
--stdout / --stderr: a regular expression searched (re.M) in that stream.
--address-space: run under this address-space limit (ulimit -v), as a memory-limited user would."""
import argparse
import os
import re
import resource
import subprocess
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--exit", type=int, required=True)
    p.add_argument("--stdout")
    p.add_argument("--stderr")
    p.add_argument("--address-space", type=int)
    p.add_argument("--env", action="append", default=[])
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    env = dict(os.environ)
    for kv in a.env:
        name, _, value = kv.partition("=")
        env[name] = value
    limit = None
    if a.address_space:
        limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (a.address_space, a.address_space))  # noqa: E731
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, preexec_fn=limit)
    failures = []
    if proc.returncode != a.exit:
        failures.append(f"exit status {proc.returncode}, expected {a.exit}")
    for name, pattern, text in (("stdout", a.stdout, proc.stdout), ("stderr", a.stderr, proc.stderr)):
        if pattern and not re.search(pattern, text, re.M):
            failures.append(f"{name} does not match {pattern!r}")
    print("$ " + " ".join(command))
    print(f"exit status {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}--- stderr\n{proc.stderr[-4000:]}")
    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
