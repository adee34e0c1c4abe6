"""Validate Kubernetes manifests offline.

Built-in kinds go through ``kubernetes-validate``'s bundled JSON schemas in strict
mode (unknown fields are errors) for every Kubernetes version asked for; custom
resources go through the ``openAPIV3Schema`` of the CRDs vendored in
docker/schemas, tightened the way the API server's strict field validation is.
A document whose kind has no schema at all is an error, not a warning.

    python docker/check_manifests.py [--kubernetes-version V ...] FILE...

Exits 1 and prints one line per finding when anything fails.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
DEFAULT_VERSIONS = ("1.30.0", "1.37.0")

Document = dict[str, Any]


def load_documents(path: Path) -> Iterator[Document]:
    """Every non-empty YAML document of ``path``."""
    with path.open(encoding="utf-8") as stream:
        for doc in yaml.safe_load_all(stream):
            if doc is not None:
                yield doc


def _strict(schema: Any) -> Any:
    """``schema`` with unknown properties forbidden wherever properties are listed."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_validators(schema_dir: Path = SCHEMA_DIR) -> dict[tuple[str, str], jsonschema.Validator]:
    """``(apiVersion, kind) -> validator`` for every served version of every vendored CRD."""
    validators: dict[tuple[str, str], jsonschema.Validator] = {}
    for path in sorted(schema_dir.glob("*.yaml")):
        for crd in load_documents(path):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = _strict(version["schema"]["openAPIV3Schema"])
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft4Validator(
                    schema, format_checker=jsonschema.FormatChecker()
                )
    return validators


def _where(doc: Document) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('name')}"


def check_custom(doc: Document, validator: jsonschema.Validator) -> list[str]:
    """Findings for one custom resource against its CRD schema."""
    return [
        f"{_where(doc)}: {'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    ]


def check_builtin(doc: Document, versions: Iterable[str]) -> list[str]:
    """Findings for one built-in resource against Kubernetes' schemas, strict."""
    import kubernetes_validate  # installed by .ci/validate-deploy into its tool venv

    findings = []
    for version in versions:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            findings.append(f"{_where(doc)}: no schema for {doc.get('apiVersion')} in {version}")
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(p) for p in error.path) or "<root>"
            findings.append(f"{_where(doc)}: Kubernetes {version}: {path}: {error.message}")
    return findings


def check_documents(
    docs: Iterable[Document], versions: Iterable[str] = DEFAULT_VERSIONS
) -> list[str]:
    """All findings for ``docs``: schema errors and duplicate objects."""
    validators = crd_validators()
    versions = tuple(versions)
    findings: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for doc in docs:
        meta = doc.get("metadata") or {}
        key = (str(doc.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))
        if key in seen:
            findings.append(f"{_where(doc)}: defined twice")
        seen.add(key)
        validator = validators.get((str(doc.get("apiVersion")), str(doc.get("kind"))))
        if validator is not None:
            findings.extend(check_custom(doc, validator))
        else:
            findings.extend(check_builtin(doc, versions))
    return findings


def main(argv: list[str] | None = None) -> int:
    """Validate every document of the given files; print findings; 1 if any."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument(
        "--kubernetes-version",
        action="append",
        dest="versions",
        help=f"validate against this version (repeatable; default {', '.join(DEFAULT_VERSIONS)})",
    )
    args = parser.parse_args(argv)
    versions = args.versions or DEFAULT_VERSIONS
    failed = False
    for path in args.files:
        docs = list(load_documents(path))
        findings = check_documents(docs, versions)
        for finding in findings:
            print(f"{path}: {finding}")
        failed = failed or bool(findings)
        if not findings:
            print(f"{path}: {len(docs)} objects valid (Kubernetes {', '.join(versions)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
