"""Matplotlib figures that never touch the user's backend or pyplot's figure list.

Every figure tfspk writes (probe PNGs, `shards.inspect` histograms, the `eval.report` DET
plot) is made by `subplots` here: a `matplotlib.figure.Figure` drawn by its own
`FigureCanvasAgg`, so importing or plotting never calls `matplotlib.use`, never opens a
window, works on servers without a display, and leaves nothing open to close.
"""
from __future__ import annotations


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, dpi=None, **subplot_options):
    """`(figure, axes)` like `matplotlib.pyplot.subplots(nrows, ncols, figsize=, dpi=,
    **subplot_options)` (`squeeze`, `sharex`, ...), with the same rcParams defaults and
    the same rendering, but an Agg canvas of its own instead of pyplot's backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(figure)
    return figure, figure.subplots(nrows, ncols, **subplot_options)
