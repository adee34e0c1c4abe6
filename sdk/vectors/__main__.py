"""``python -m sdk.vectors [--check]``: write (or compare) sdk/vectors/v1.json."""

from __future__ import annotations

import argparse
import sys

from sdk.vectors import PATH, build_vectors, dumps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdk.vectors", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file differs")
    args = parser.parse_args(argv)
    text = dumps(build_vectors())
    if args.check:
        same = PATH.exists() and PATH.read_text(encoding="utf-8") == text
        print(f"{PATH}: {'up to date' if same else 'DIFFERS'}")
        return 0 if same else 1
    PATH.write_text(text, encoding="utf-8")
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
