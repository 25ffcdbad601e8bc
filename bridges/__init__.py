"""Mercato's bridges to other address books and networks."""
