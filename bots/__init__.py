"""Mercato's bots."""
