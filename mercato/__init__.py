"""Mercato's shared core: config, database, logging, metrics, Matrix helpers, CLI."""

__version__ = "0.1.0"
