"""A product's price or stock changed: its recommendations in circle rooms are edited like its
cards (catalog/cards.py calls this beside its own card edits)."""

from __future__ import annotations

from appservices.commerce.catalog.products import Product
from appservices.commerce.circle import operations
from appservices.commerce.circle.rooms import CircleRooms
from mercato.db import Database


async def refresh_recommendations(db: Database, matrix: object, product: Product) -> int:
    """Queue the edits; nothing where the Circle is not wired (a tool without Matrix)."""
    rooms = getattr(matrix, "circle", None)
    if not isinstance(rooms, CircleRooms):
        return 0
    return await operations.refresh(db, rooms, product)
