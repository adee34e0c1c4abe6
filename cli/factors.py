"""`tacit factors`: the installed factors, as the registry (core/factors.py) finds them.

tacit factors            a table: name, wire code, score queue, module, distribution, extras
tacit factors --names    one name per line (for scripts: ``for f in $(tacit factors --names)``)
tacit factors --json     one JSON object per factor, on one line
"""

from __future__ import annotations

import argparse
import json
from typing import Any

SUBMODULES = ("synthetic", "train", "dataset")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "factors", help="list the installed factors (the tacit.factors plug-ins)"
    )
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--names", action="store_true", help="only the names, one per line")
    shown.add_argument("--json", action="store_true", help="one JSON line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core import factors
    from core.settings import get_settings

    specs = list(factors.installed().values())  # a broken plug-in: cli.main says which
    queues = get_settings().queues
    rows: list[dict[str, Any]] = [
        {
            "name": f.name,
            "wire_code": f.wire_code,
            "queue": queues.score_queue(f.name),
            "module": f.module,
            "distribution": f.distribution,
            "provides": [m for m in SUBMODULES if f.provides(m)],
        }
        for f in specs
    ]
    if args.names:
        print("\n".join(r["name"] for r in rows))
    elif args.json:
        print(json.dumps(rows))
    else:
        _table(rows)
    return 0


def _table(rows: list[dict[str, Any]]) -> None:
    head = ("factor", "code", "queue", "module", "distribution", "provides")
    cells = [
        (
            r["name"],
            str(r["wire_code"]),
            r["queue"],
            r["module"],
            r["distribution"],
            ",".join(r["provides"]) or "-",
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]
    for line in [head, *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
