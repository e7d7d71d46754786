"""snapclass: a self-hosted, no-code image-classifier trainer."""

__version__ = "0.2.0"
