"""The `labship` command a tool install puts on PATH (the experiment's verbs are `invoke` tasks).

    labship doctor [--strict] [--port N]    the preflight of `invoke doctor`, also outside an experiment
    labship version                         the installed labship version

A tool installer (`uv tool install`, `pipx install`) installs only packages that provide a command,
so this is also what makes labship installable as a tool next to the invoke, dvc and copier it brings.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the subcommand and run it; returns the exit status."""
    parser = argparse.ArgumentParser(prog="labship", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="check that this machine can build, launch and share")
    doctor.add_argument("--strict", action="store_true", help="warnings make the exit status non-zero")
    doctor.add_argument("--port", type=int, default=None, help="notebook port to check (default 8888)")
    commands.add_parser("version", help="print the installed labship version")
    options = parser.parse_args(argv)
    if options.command == "version":
        from importlib.metadata import version

        print(version("labship"))
        return 0
    from labship import doctor as preflight

    args = ["--strict"] if options.strict else []
    return preflight.main([*args, *(["--port", str(options.port)] if options.port else [])])


if __name__ == "__main__":
    sys.exit(main())
