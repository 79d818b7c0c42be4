"""The document root every end-to-end test serves, and the secrets placed just outside it.

Layout (under a temporary directory `base`):

    base/secret.txt              outside the docroot; content holds SECRET_MARKER
    base/outside/secret2.txt     outside the docroot; content holds SECRET_MARKER
    base/root/                   the --docroot
        index.html               exactly 305 bytes (the Kerneis & Chroboczek page size)
        plain.txt style.css script.js data.json image.png
        edge-below.bin           threshold - 1 bytes (served with writev)
        edge-at.bin              threshold bytes (served with sendfile: "at least this large")
        big.bin                  300 KiB (sendfile), a byte pattern that makes any
                                 misplaced or dropped range visible
        file with space.txt
        subdir/index.html  subdir/page.html
        link-out                 symlink -> base/secret.txt (points outside the root)
        dir-out                  symlink -> base/outside/ (a directory outside the root)
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

INDEX_SIZE = 305
SENDFILE_THRESHOLD = 64 * 1024  # the documented default of --sendfile-threshold
SECRET_MARKER = f"SECRET-{uuid.uuid4().hex}-MUST-NEVER-BE-SERVED".encode()


def _index_html() -> bytes:
    head = b"<!DOCTYPE html>\n<html><head><title>httpbench</title></head>\n<body>\n<p>"
    tail = b"</p>\n</body></html>\n"
    filler = INDEX_SIZE - len(head) - len(tail)
    body = (b"The quick brown fox jumps over the lazy dog. " * 10)[:filler]
    page = head + body + tail
    assert len(page) == INDEX_SIZE
    return page


def _pattern(size: int, seed: int) -> bytes:
    """Deterministic bytes whose 4-byte words encode their own offset, so a short, shifted or
    duplicated range never compares equal."""
    words = bytearray()
    for i in range(0, size, 4):
        words += ((i // 4) * 2654435761 + seed & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(words[:size])


# 1x1 transparent PNG.
PNG_BYTES = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)

#: Files served from the docroot: URL path -> (bytes, acceptable Content-Type prefixes).
FILES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "/index.html": (_index_html(), ("text/html",)),
    "/plain.txt": (b"plain text file\n" * 7, ("text/plain",)),
    "/style.css": (b"body { color: #333; }\n" * 5, ("text/css",)),
    "/script.js": (b"console.log('httpbench');\n" * 4, ("application/javascript", "text/javascript")),
    "/data.json": (b'{"answer": 42, "list": [1, 2, 3]}\n', ("application/json",)),
    "/image.png": (PNG_BYTES, ("image/png",)),
    "/edge-below.bin": (_pattern(SENDFILE_THRESHOLD - 1, 1), ("application/octet-stream",)),
    "/edge-at.bin": (_pattern(SENDFILE_THRESHOLD, 2), ("application/octet-stream",)),
    "/big.bin": (_pattern(300 * 1024, 3), ("application/octet-stream",)),
    "/file with space.txt": (b"a file whose name has a space\n", ("text/plain",)),
    "/subdir/index.html": (b"<html><body>subdir index</body></html>\n", ("text/html",)),
    "/subdir/page.html": (b"<html><body>subdir page</body></html>\n", ("text/html",)),
}


@dataclass(frozen=True)
class Docroot:
    base: Path
    root: Path

    def body(self, url_path: str) -> bytes:
        return FILES[url_path][0]


def create_docroot(base: Path) -> Docroot:
    root = base / "root"
    root.mkdir(parents=True)
    (base / "secret.txt").write_bytes(b"top secret: " + SECRET_MARKER + b"\n")
    (base / "outside").mkdir()
    (base / "outside" / "secret2.txt").write_bytes(b"also secret: " + SECRET_MARKER + b"\n")
    for url_path, (content, _) in FILES.items():
        target = root / url_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    os.symlink(base / "secret.txt", root / "link-out")
    os.symlink(base / "outside", root / "dir-out")
    return Docroot(base=base, root=root)
