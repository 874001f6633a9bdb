"""Figures for the lessons: matplotlib only, each function returns a ``Figure``.

Conventions: figures are made with ``matplotlib.figure.Figure`` (not pyplot), so nothing is
drawn twice and no global state leaks between cells; a lesson cell ends with the figure to show
it. Plotting never computes attention: pass in the scores or weights to draw.
"""
