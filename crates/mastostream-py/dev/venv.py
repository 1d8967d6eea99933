#!/usr/bin/env python3
"""Makes (or refreshes) a virtualenv with the mastostream wheel installed.

    python3 crates/mastostream-py/dev/venv.py --venv DIR --requirements FILE [--profile dev|release]

Creates DIR with the standard library's venv, installs FILE's pinned
requirements (maturin among them) when they changed since the last run, builds
the wheel with maturin in the given Cargo profile (``dev`` for tests: it
reuses the workspace's debug build; ``release`` for benchmarks) and installs
it. Prints the venv's python on the last line of stdout.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys

CRATE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*command, **kwargs):
    print("+", " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True, **kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", required=True)
    parser.add_argument("--requirements", required=True)
    parser.add_argument("--profile", default="dev", choices=["dev", "release"])
    args = parser.parse_args()

    python = os.path.join(args.venv, "bin", "python")
    if not os.path.exists(python):
        run(sys.executable, "-m", "venv", args.venv)
    with open(args.requirements) as f:
        wanted = f.read()
    marker = os.path.join(args.venv, "installed-requirements.txt")
    installed = open(marker).read() if os.path.exists(marker) else None
    if installed != wanted:
        run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", args.requirements)
        with open(marker, "w") as f:
            f.write(wanted)

    wheels = os.path.join(args.venv, "wheels")
    shutil.rmtree(wheels, ignore_errors=True)
    maturin = os.path.join(args.venv, "bin", "maturin")
    run(maturin, "build", "--quiet", "--profile", args.profile, "--out", wheels,
        "--manifest-path", os.path.join(CRATE, "Cargo.toml"), "--interpreter", python)
    built = glob.glob(os.path.join(wheels, "*.whl"))
    if len(built) != 1:
        sys.exit(f"venv.py: expected one wheel in {wheels}, found {built}")
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--force-reinstall", built[0])
    print(python)


if __name__ == "__main__":
    main()
