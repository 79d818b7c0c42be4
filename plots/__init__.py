"""Figures and the PDF report, drawn from a ``harness.analysis.Analysis``.

One module per figure kind; each exposes ``NAME`` (file stem), ``TITLE`` and
``draw(analysis) -> matplotlib.figure.Figure``. ``report`` assembles them into report.pdf.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never needs a display

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


def render_all(analysis, out_dir: Path) -> list[Path]:
    """Draw every figure into ``out_dir`` as PNG and PDF; return the written paths."""
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for module in FIGURES:
        fig = module.draw(analysis)
        for ext in ("png", "pdf"):
            path = out_dir / f"{module.NAME}.{ext}"
            fig.savefig(path, dpi=110 if ext == "png" else None)
            written.append(path)
        plt.close(fig)
    return written
