"""Build the project's wheel from exactly what an image's build context holds.

The images are built from the repository root with ``<name>.Dockerfile.dockerignore``;
this copies the files that ignore file lets through into a scratch directory and runs
the Dockerfiles' ``pip wheel --no-deps .`` there, so a file the build needs (the
README that pyproject names, package data, a new package) cannot be left out unseen.

    python docker/check_build_context.py docker/api.Dockerfile.dockerignore ...
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _patterns(ignore_file: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """``(negated, regex)`` per line, in order; Docker's ``**`` crosses directories."""
    patterns = []
    for raw in ignore_file.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        patterns.append((negated, re.compile(_regex(line.lstrip("!").strip("/")))))
    return patterns


def _regex(pattern: str) -> str:
    """Docker's (Go filepath.Match) glob as a regex: ``*`` stays within one name."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def included(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker sends ``relative`` (a path under the context root)."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, regex in patterns:
        # a pattern that matches a parent directory applies to everything below it
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negated
    return not excluded


def context_files(ignore_file: Path, root: Path = REPO) -> list[Path]:
    """The tracked and untracked-but-not-ignored files that reach the build."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout.decode()
    patterns = _patterns(ignore_file)
    return [
        Path(p) for p in listed.split("\0") if p and included(p, patterns) and (root / p).is_file()
    ]


def build_wheel(ignore_file: Path, python: str = sys.executable) -> bool:
    """Copy the context, build the wheel offline; True when it builds."""
    with tempfile.TemporaryDirectory() as scratch:
        context = Path(scratch) / "context"
        files = context_files(ignore_file)
        for relative in files:
            target = context / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / relative, target)
        result = subprocess.run(
            [python, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
            + ["--wheel-dir", str(Path(scratch) / "wheels"), str(context)],
            capture_output=True,
            text=True,
        )
        print(
            f"{ignore_file.name}: {len(files)} files in context, wheel {'built' if result.returncode == 0 else 'FAILED'}"
        )
        if result.returncode != 0:
            print(result.stdout[-4000:], result.stderr[-4000:], sep="\n")
        return result.returncode == 0


if __name__ == "__main__":
    sys.exit(0 if all([build_wheel(Path(arg)) for arg in sys.argv[1:]]) else 1)
