"""The files an experiment serves: the page (``index.html`` of an exact size, 305 bytes in
Kerneis & Chroboczek) and, for the dynamic-page experiment, the static twin of the dynamic page.
The runner, `harness peers`, the idle-memory probe and the scripts write their docroots with
these."""

from __future__ import annotations

import os
from pathlib import Path

PAGE_FILE = "index.html"


def write_page(docroot: Path, size: int) -> Path:
    """The served page: valid HTML of exactly ``size`` bytes (305 in Kerneis & Chroboczek)."""
    head = "<!DOCTYPE html>\n<html><head><title>httpbench</title></head><body>\n<p>"
    tail = "</p>\n</body></html>\n"
    filler_len = size - len(head) - len(tail)
    if filler_len >= 0:
        text = "Are events fast? " * (filler_len // 17 + 1)
        body = head + text[:filler_len] + tail
    else:
        body = ("x" * size)
    docroot.mkdir(parents=True, exist_ok=True)
    page = docroot / PAGE_FILE
    page.write_bytes(body.encode("ascii"))
    os.chmod(docroot, 0o755)
    os.chmod(page, 0o644)
    return page


STATIC_TWIN = "dynamic-twin.html"


def write_static_twin(docroot: Path, body: bytes) -> Path:
    """A static file holding exactly the dynamic page's body, so that a static server and the
    dynamic page send the same bytes (Fremlin 2008 compares the two)."""
    page = docroot / STATIC_TWIN
    page.write_bytes(body)
    os.chmod(page, 0o644)
    return page
