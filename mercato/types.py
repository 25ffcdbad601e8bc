"""Identifiers as types, so a signature says what it takes."""

from typing import NewType

from mautrix.types import EventID, RoomAlias, RoomID, UserID

MerchantSlug = NewType("MerchantSlug", str)
Sku = NewType("Sku", str)
CampaignID = NewType("CampaignID", int)
TransactionID = NewType("TransactionID", str)

__all__ = [
    "CampaignID",
    "EventID",
    "MerchantSlug",
    "RoomAlias",
    "RoomID",
    "Sku",
    "TransactionID",
    "UserID",
]
