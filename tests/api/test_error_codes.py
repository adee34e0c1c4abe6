"""Every error code the source can send is in docs/protocol.md's section 10 (issue 14.12)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The ways a code is written where it is raised or answered.
PATTERNS = [
    re.compile(r'\bcode\s*=\s*"([a-z][a-z0-9_]+)"'),
    re.compile(r'\bcode: str = "([a-z][a-z0-9_]+)"'),
    re.compile(r'^\s+code = "([a-z][a-z0-9_]+)"', re.M),
    re.compile(r'ProtocolError\(\s*"([a-z][a-z0-9_]+)"'),
    re.compile(r'Refused\(\s*\d{3},\s*"([a-z][a-z0-9_]+)"'),
    re.compile(r'error_body\(\s*"([a-z][a-z0-9_]+)"'),
    re.compile(r'_refuse\(\s*b"[^"]*",\s*"([a-z][a-z0-9_]+)"'),
    re.compile(r'\b[45]\d\d: "([a-z][a-z0-9_]+)"'),  # status -> code tables
    re.compile(r'^\s+"([a-z][a-z0-9_]+)": [45]\d\d,$', re.M),  # code -> status tables
]


def codes_in_source() -> dict[str, str]:
    found: dict[str, str] = {}
    for folder in ("api", "core"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            for pattern in PATTERNS:
                for match in pattern.finditer(text):
                    found.setdefault(match.group(1), str(path.relative_to(ROOT)))
    return found


def documented() -> str:
    doc = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    return doc[doc.index("## 10. Error codes") : doc.index("## 11.")]


def test_the_scan_finds_codes_of_every_kind():  # type: ignore[no-untyped-def]
    codes = codes_in_source()
    for code in (
        "body_too_large",
        "invalid_text",
        "device_not_found",
        "not_found",
        "signature_replayed",
        "invalid_cursor",
        "webhook_url_unresolvable",
        "method_not_allowed",
        "header_timeout",
    ):
        assert code in codes, code


def test_every_code_is_in_the_protocol_table():  # type: ignore[no-untyped-def]
    section = documented()
    missing = {
        code: where for code, where in codes_in_source().items() if f"`{code}`" not in section
    }
    assert not missing, f"codes missing from docs/protocol.md section 10: {missing}"
