"""scripts/footprint.py's counting, on a small lackey trace written here: where it cuts the trace,
how it counts distinct lines and pages, and how it tells code from data and the program from its
libraries (the valgrind run itself is a measurement for notes, not a test)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "footprint.py"
spec = importlib.util.spec_from_file_location("footprint", SCRIPT)
footprint = importlib.util.module_from_spec(spec)
sys.modules["footprint"] = footprint  # dataclasses look their module up there
spec.loader.exec_module(footprint)

LIBC = Path("/usr/lib/x86_64-linux-gnu/libc.so.6")
LIBC_BASE = 0x7F0000000000


@pytest.fixture
def trace(tmp_path: Path) -> footprint.Trace:
    if not LIBC.exists():
        pytest.skip(f"{LIBC} is not here")
    cut = LIBC_BASE + footprint.dynamic_symbols(str(LIBC))["writev"]
    maps = [
        footprint.Mapping(0x400000, 0x402000, 0, "r-xp", "/opt/x/httpd-test"),
        footprint.Mapping(0x402000, 0x403000, 0x2000, "rw-p", "/opt/x/httpd-test"),
        footprint.Mapping(0x500000, 0x510000, 0, "rw-p", "[heap]"),
        footprint.Mapping(LIBC_BASE, LIBC_BASE + 0x200000, 0, "r-xp", str(LIBC)),
        footprint.Mapping(0x7FFF0000, 0x7FFF8000, 0, "rw-p", "[stack]"),
    ]
    lines = [
        "==1== Lackey, an example Valgrind tool",
        "I  00400000,4",          # before the first writev: start-up, its own piece
        f"I  {cut:08x},3",        # piece 1: writev itself (library code)
        "I  00400004,4",          # program code, line 0x400000 again: counted once
        "I  0040003e,4",          # crosses into the line at 0x400040: two lines
        " L 7fff0ff8,16",         # stack, crosses a page: two lines, two pages
        " S 00500000,8",          # heap
        " M 00402010,8",          # the program's data
        f"I  {cut:08x},3",        # piece 2
        "I  00401000,4",          # program code on a second page
        " L 00500008,8",          # the heap line again
    ]
    file = tmp_path / "trace.1"
    file.write_text("\n".join(lines) + "\n")
    return footprint.Trace(1, maps, file)


def test_the_trace_is_cut_at_each_call_of_the_split_function(trace):
    pieces = footprint.pieces(trace, "httpd-test", "writev", functions=False)
    assert [p.instructions for p in pieces] == [1, 3, 2]


def test_lines_and_pages_are_counted_once_each_and_by_kind(trace):
    _, first, second = footprint.pieces(trace, "httpd-test", "writev", functions=False)
    assert {k: len(v) for k, v in first.lines.items()} == {
        "library code": 1, "program code": 2, "stack+heap": 3, "program data": 1}
    assert {k: len(v) for k, v in first.pages.items()} == {
        "library code": 1, "program code": 1, "stack+heap": 3, "program data": 1}
    assert {k: len(v) for k, v in second.lines.items()} == {
        "library code": 1, "program code": 1, "stack+heap": 1}


def test_a_split_function_the_libraries_lack_is_a_clear_error(trace):
    with pytest.raises(SystemExit, match="no_such_function"):
        footprint.pieces(trace, "httpd-test", "no_such_function", functions=False)


def test_each_line_is_charged_once_to_the_function_that_first_touched_it(trace):
    _, first, second = footprint.pieces(trace, "httpd-test", "writev", functions=True)
    program = "httpd-test: ?"  # the test's program is not on disk, so it has no symbols
    writev = next(name for name in first.by_function if name.startswith("libc.so"))
    assert "writev" in writev
    assert first.by_function == {writev: 1, program: 2}
    # writev's own line; the program's two code lines; the stack's two lines, the heap's and the
    # program data's, all touched after the program's instruction at 0x40003e
    assert first.code_lines_by_function == {writev: 1, program: 2}
    assert first.data_lines_by_function == {program: 4}
    assert second.code_lines_by_function == {writev: 1, program: 1}
    assert second.data_lines_by_function == {program: 1}
