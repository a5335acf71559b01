"""Figures: matplotlib functions that take data and return a Figure; they compute no science."""
