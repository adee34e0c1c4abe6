"""What every command shares: clear failures, progress on stderr, JSON log lines."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


def say(message: str) -> None:
    """A progress or status line on stderr, flushed at once."""
    print(message, file=sys.stderr, flush=True)


def fail(message: str) -> int:
    print(f"tacit: error: {message}", file=sys.stderr)
    return 2


def setup_logging(level: str = "INFO") -> None:
    """JSON lines on stderr; messages that already are JSON pass through as objects."""

    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            msg = record.getMessage()
            entry: dict[str, Any] = {
                "ts": round(record.created, 3),
                "level": record.levelname.lower(),
                "logger": record.name,
            }
            try:
                parsed = json.loads(msg)
                entry.update(parsed if isinstance(parsed, dict) else {"message": msg})
            except ValueError:
                entry["message"] = msg
            if record.exc_info:
                entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
            return json.dumps(entry)

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class Progress:
    """A one-line progress bar on stderr (only redrawn on a terminal, summarised otherwise)."""

    def __init__(self, label: str, total: int, *, stream=sys.stderr) -> None:  # type: ignore[no-untyped-def]
        self.label, self.total, self.stream = label, max(1, total), stream
        self.done, self.t0, self._last = 0, time.monotonic(), 0.0
        self._printed = -1
        self.tty = stream.isatty()

    def update(self, done: int, note: str = "") -> None:
        self.done = done
        now = time.monotonic()
        if not self.tty and (
            done == self._printed or (now - self._last < 2.0 and done < self.total)
        ):
            return
        self._last, self._printed = now, done
        frac = min(1.0, done / self.total)
        bar = "#" * int(frac * 30)
        line = f"{self.label} [{bar:<30}] {done}/{self.total} {now - self.t0:5.1f}s {note}"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def finish(self, note: str = "") -> None:
        self.update(self.total if self.done < self.total else self.done, note)
        if self.tty:
            self.stream.write("\n")
