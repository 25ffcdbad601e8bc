"""Mercato's shared core: config, database, logging, metrics, Matrix helpers, commands."""

__version__ = "0.1.0"
