"""A progress bar over points: tqdm when installed, otherwise one line per point."""

from __future__ import annotations

import sys
import time
from typing import Any

try:
    import tqdm as _tqdm

    _tqdm.tqdm.monitor_interval = 0  # no monitor thread: servers are forked from this process
except ImportError:  # pragma: no cover - tqdm is optional
    _tqdm = None


class Progress:
    def __init__(self, total: int, enabled: bool = True):
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.t0 = time.monotonic()
        self._bar: Any = None
        if enabled and _tqdm is not None and sys.stderr.isatty():
            self._bar = _tqdm.tqdm(total=total, unit="point", dynamic_ncols=True,
                                   bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")

    def describe(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_description_str(text)
        elif self.enabled:
            eta = self._eta()
            print(f"[{self.done + 1}/{self.total}] {text}{eta}", file=sys.stderr, flush=True)

    def _eta(self) -> str:
        if self.done == 0:
            return ""
        elapsed = time.monotonic() - self.t0
        remaining = elapsed / self.done * (self.total - self.done)
        return f"  (ETA {int(remaining // 60)}m{int(remaining % 60):02d}s)"

    def advance(self) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)

    def message(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
