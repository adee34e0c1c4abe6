"""The `tacit` command: one entry point, one module per sub-command.

Each module in ``COMMANDS`` exposes ``register(subparsers)``, which adds its parser
and sets ``func`` (``args -> exit code``). Modules import heavy libraries inside
their ``run`` functions so ``tacit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = (
    "cli.up",
    "cli.api",
    "cli.migrate",
    "cli.worker",
    "cli.demo",
    "cli.tenant",
    "cli.keys",
    "cli.train",
    "cli.eval",
    "cli.jobs",
    "cli.bench",
    "cli.chaos",
    "cli.scale",
    "cli.deploy",
    "cli.factors",
    "cli.export",
    "cli.templates",
    "cli.capacity",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tacit", description="Implicit-authentication backend.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that command is not part of this build yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from core.factors import FactorError

    try:
        parser = build_parser()  # the factor choices come from the installed plug-ins
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except FactorError as e:  # a broken or clashing plug-in: say which, not a traceback
        print(f"tacit: error: {e} ({e.code})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
