"""Plots: read plot data files, draw them as a self-contained HTML page or as terminal text."""
