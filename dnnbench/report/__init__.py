"""Presentation and persistence: CSV/metadata writers, Rich tables and progress, figures."""
