"""Reproducible benchmark suite for robust fine-tuning of object detectors."""

__version__ = "0.1.0"
