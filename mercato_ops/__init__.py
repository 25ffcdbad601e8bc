"""Mercato's operations app: the `mercato` command, the supervisor that starts the network,
config rendering, the scale profile's router, migration to PostgreSQL and the test network.

It may import every component; the core (`mercato/`) and the components never import it.
"""
