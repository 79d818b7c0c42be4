"""Figures and the PDF report, drawn from a ``harness.analysis.Analysis``.

One module per figure kind; each exposes ``NAME`` (file stem), ``TITLE`` and
``draw(analysis) -> matplotlib.figure.Figure``. ``report`` assembles them into report.pdf.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never needs a display
from matplotlib.figure import Figure  # noqa: E402

from plots import (  # noqa: E402  (the backend must be chosen first)
    context_switches,
    cpu_per_request,
    measured_load,
    memory,
    percentiles,
    response_time,
    throughput,
)

FIGURES = (measured_load, response_time, throughput, percentiles, cpu_per_request, context_switches, memory)


def save_figure(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Writes ``fig`` as ``out_dir/stem.png`` (110 dpi) and ``stem.pdf`` and closes it; returns
    the two paths. Every chapter's render_all saves its figures this way."""
    import matplotlib.pyplot as plt

    written = []
    for ext in ("png", "pdf"):
        path = out_dir / f"{stem}.{ext}"
        fig.savefig(path, dpi=110 if ext == "png" else None)
        written.append(path)
    plt.close(fig)
    return written


def render_all(analysis, out_dir: Path) -> list[Path]:
    """Draw every figure into ``out_dir`` as PNG and PDF; return the written paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [path for module in FIGURES for path in save_figure(module.draw(analysis), out_dir, module.NAME)]
