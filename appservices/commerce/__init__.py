"""The commerce appservice: merchants, channels, campaigns, catalog, cards, its HTTP API."""
