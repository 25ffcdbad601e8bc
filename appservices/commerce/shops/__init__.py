"""Shops: applying, approval and verification, staff, API keys, channels and the audit log."""
