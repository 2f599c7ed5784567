"""Batch grading of a class: `conformance grade` (see batch.py)."""
