"""`tacit deploy`: the per-factor parts of the deployment files, for every installed factor.

Everything in ``docker/`` that is repeated per factor (a worker Deployment, its KEDA
ScaledObject, its compose service, its Triton server...) is written from one template
for all installed factors (docs/factors.md), so installing a factor plug-in and running
``tacit deploy`` gives its pool the same manifests as the built-in factors':

- ``docker/templates/<name>.yaml`` whose first line is ``# tacit deploy: <path>`` is
  written once per factor to ``<path>`` (``{{factor}}`` in it replaced);
- a block between ``# >>> tacit deploy: <template>`` and ``# <<< tacit deploy`` in any
  other file is replaced by the template rendered once per factor, in registry order;
  ``<template>`` names a file of ``docker/templates/`` or is a quoted one-line template;
- the KEDA ScaledObjects come from ``core.scaling`` (the factor's ``SCALING`` figures).

Placeholders: ``{{factor}}`` and the pool's resources, ``{{cpu_request}}``,
``{{memory_request}}``, ``{{cpu_limit}}``, ``{{memory_limit}}`` (the factor's
``RESOURCES``, else ``DEFAULT_RESOURCES``). ``--check`` writes nothing and exits 1 when a
file differs from what would be written; tests/docker runs it on the committed tree.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from core import factors as registry

OUTPUT_LINE = re.compile(r"# tacit deploy: (?P<path>\S+)\n")
BLOCK = re.compile(
    r"(?P<begin>^[ \t]*# >>> tacit deploy: (?P<template>\"[^\"\n]*\"|\S+)[ \t]*\n)"
    r"(?P<body>.*?)"
    r"(?P<end>^[ \t]*# <<< tacit deploy[ \t]*\n)",
    re.MULTILINE | re.DOTALL,
)
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
# A factor that declares no RESOURCES gets what the gait pool asks for (a CPU model).
DEFAULT_RESOURCES = {
    "cpu_request": "1",
    "memory_request": "2Gi",
    "cpu_limit": "2",
    "memory_limit": "4Gi",
}


class DeployError(Exception):
    pass


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "deploy", help="write the per-factor deployment files for every installed factor"
    )
    p.add_argument("--dir", type=Path, default=Path("docker"), help="the deployment folder")
    p.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is out of date"
    )
    p.set_defaults(func=run)


def values(factor: registry.FactorSpec) -> dict[str, str]:
    return {"factor": factor.name, **DEFAULT_RESOURCES, **factor.resources}


def render(template: str, fields: Mapping[str, str], where: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1) not in fields:
            raise DeployError(f"{where}: unknown placeholder {m.group(0)}")
        return str(fields[m.group(1)])

    return PLACEHOLDER.sub(one, template)


def _block_template(name: str, templates: Path, where: str) -> str:
    if name.startswith('"'):
        return name[1:-1] + "\n"
    path = templates / name
    if not path.is_file():
        raise DeployError(f"{where}: no template {path}")
    return path.read_text(encoding="utf-8")


def render_blocks(text: str, templates: Path, where: str) -> str:
    """`text` with each marked block rendered for every installed factor."""
    factors = list(registry.installed().values())

    def one(m: re.Match[str]) -> str:
        template = _block_template(m.group("template"), templates, where)
        body = "".join(render(template, values(f), where) for f in factors)
        return m.group("begin") + body + m.group("end")

    return BLOCK.sub(one, text)


def planned(root: Path) -> dict[Path, str]:
    """Every file `tacit deploy` owns under `root`, with the content it should have."""
    from core.scaling import keda_filename, render_yaml, scaled_objects

    templates = root / "templates"
    if not templates.is_dir():
        raise DeployError(
            f"{templates} does not exist (run from the repository root or pass --dir)"
        )
    out: dict[Path, str] = {}
    for path in sorted(templates.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        m = OUTPUT_LINE.match(text)
        if m is None:
            continue  # a block template
        body = (
            f"# Written by `tacit deploy` from docker/templates/{path.name}: edit the template.\n"
        )
        body += text[m.end() :]
        for f in registry.installed().values():
            target = root / render(m.group("path"), values(f), str(path))
            out[target] = render(body, values(f), str(path))
    for obj in scaled_objects():
        factor = obj["metadata"]["labels"]["tacit.dev/factor"]
        out[root / "k8s" / "base" / keda_filename(factor)] = render_yaml(obj)
    for path in sorted(p for p in root.rglob("*.y*ml") if templates not in p.parents):
        if path in out:
            continue
        text = path.read_text(encoding="utf-8")
        if BLOCK.search(text):
            out[path] = render_blocks(text, templates, str(path))
    return out


def run(args: argparse.Namespace) -> int:
    try:
        plan = planned(args.dir)
    except (DeployError, registry.FactorError) as e:
        print(f"tacit deploy: {e}", file=sys.stderr)
        return 2
    stale = [
        p for p, text in plan.items() if not p.is_file() or p.read_text(encoding="utf-8") != text
    ]
    if args.check:
        for p in stale:
            print(f"out of date: {p}", file=sys.stderr)
        if stale:
            print("tacit deploy: run `tacit deploy` to write them", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(plan[p], encoding="utf-8")
        print(f"wrote {p}")
    print(
        f"tacit deploy: {len(plan)} files for {', '.join(registry.names())}; {len(stale)} changed"
    )
    return 0
