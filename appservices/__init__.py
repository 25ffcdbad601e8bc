"""Mercato's application services."""
