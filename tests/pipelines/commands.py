"""Running a `tacit` sub-command in the test process."""

from __future__ import annotations

import argparse


def run_command(module: object, argv: list[str]) -> int:
    """`argv` parsed by the sub-commands `module` registers; the command's exit status."""
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers())  # type: ignore[attr-defined]
    args = parser.parse_args(argv)
    return int(args.func(args))
