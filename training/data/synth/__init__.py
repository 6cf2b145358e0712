"""Procedural scenes (ray cast in numpy) written in the real datasets' formats."""
