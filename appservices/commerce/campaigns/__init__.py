"""Campaigns: posts a shop writes once and sends to its channels, their coupons and stats."""
