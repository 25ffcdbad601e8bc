"""SQLite → PostgreSQL migration: the plan, the ordering and conversions, and a component
database copied for real (SQLite file → a fresh PostgreSQL database)."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from mercato.config import ConfigError, parse_config
from mercato_ops.migrate.components import (
    copy_component,
    create_schema,
    dependency_order,
    known_upgrade_tables,
    sqlite_upgrade_tables,
    to_postgres,
)
from mercato_ops.migrate.plan import (
    MigrationError,
    Target,
    backup_path,
    check_stopped,
    listening_endpoints,
    migrated_config,
    plan,
)
from mercato_ops.testnet import free_port

SERVER = "postgres://postgres@127.0.0.1:5432"


def test_plan_moves_every_sqlite_database_to_the_scale_profiles_names(tmp_path) -> None:
    config = parse_config({}, base_dir=tmp_path)
    targets = plan(config, SERVER + "/", "mercato_")
    assert [(t.part, t.database, t.url) for t in targets] == [
        ("synapse", "mercato_synapse", f"{SERVER}/mercato_synapse"),
        ("commerce", "mercato_commerce", f"{SERVER}/mercato_commerce"),
        ("contacts", "mercato_contacts", f"{SERVER}/mercato_contacts"),
    ]
    assert targets[0].sqlite_path == tmp_path / "data" / "synapse" / "homeserver.db"
    assert targets[1].sqlite_path == tmp_path / "data" / "commerce.db"


def test_plan_leaves_out_what_is_already_on_postgres(tmp_path) -> None:
    config = parse_config({"synapse": {"database": f"{SERVER}/hs"},
                           "contacts": {"database": "sqlite:elsewhere/contacts.db"}},
                          base_dir=tmp_path)
    targets = plan(config, SERVER, "m_")
    assert [t.part for t in targets] == ["commerce", "contacts"]
    # Components run in the data directory: a relative SQLite path is relative to it.
    assert targets[1].sqlite_path == tmp_path / "data" / "elsewhere" / "contacts.db"
    everything_moved = parse_config({"synapse": {"database": f"{SERVER}/a"},
                                     "commerce": {"database": f"{SERVER}/b"},
                                     "contacts": {"database": f"{SERVER}/c"}})
    assert plan(everything_moved, SERVER, "m_") == []


def test_listening_endpoints_cover_every_process_of_the_network() -> None:
    config = parse_config({"synapse": {"port": 8100, "bind_address": "0.0.0.0",
                                       "federation_port": 8448, "tls_certificate": "c.pem",
                                       "tls_private_key": "k.pem"},
                           "shopbot": {"bind_address": "::1"}})
    assert listening_endpoints(config) == [
        ("synapse.port", "127.0.0.1", 8100), ("synapse.federation_port", "127.0.0.1", 8448),
        ("commerce.port", "127.0.0.1", 8090), ("contacts.port", "127.0.0.1", 8091),
        ("shopbot.port", "::1", 8092)]


def test_a_running_network_is_refused_by_the_port_it_holds() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        # Every other port free too, whatever else runs on this machine (8008, say).
        config = parse_config({"commerce": {"port": port}, "synapse": {"port": free_port()},
                               "contacts": {"port": free_port()},
                               "shopbot": {"port": free_port()}})
        with pytest.raises(MigrationError, match=rf"127.0.0.1:{port}, commerce.port"):
            check_stopped(config)
    check_stopped(config)  # nothing answers any more


def test_dependency_order_puts_referenced_tables_first() -> None:
    order = dependency_order(
        ["follower", "channel", "merchant", "coupon_code", "coupon", "as_inbox"],
        [("follower", "channel"), ("channel", "merchant"), ("coupon_code", "coupon"),
         ("coupon", "merchant"), ("merchant", "merchant"), ("x", "merchant")])
    assert order.index("merchant") < order.index("channel") < order.index("follower")
    assert order.index("coupon") < order.index("coupon_code")
    assert sorted(order) == sorted(["follower", "channel", "merchant", "coupon_code",
                                    "coupon", "as_inbox"])
    with pytest.raises(MigrationError, match="cycle"):
        dependency_order(["a", "b"], [("a", "b"), ("b", "a")])


@pytest.mark.parametrize(("value", "pg_type", "expected"), [
    (1, "boolean", True), (0, "boolean", False), ("t", "boolean", True),
    (None, "boolean", None), ("42", "bigint", 42), (7, "integer", 7), (3.0, "bigint", 3),
    (12, "text", "12"), (b"caf\xc3\xa9", "text", "café"), ("join", "enum", "join"),
    ("é", "bytea", b"\xc3\xa9"), (b"\x00\x01", "bytea", b"\x00\x01"),
    ("59.90", "numeric", Decimal("59.90")), (2, "double precision", 2.0),
    ('{"a": 1}', "jsonb", '{"a": 1}'),
])
def test_values_are_converted_to_the_postgres_column_type(value, pg_type, expected) -> None:
    converted = to_postgres(value, pg_type)
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(("value", "pg_type"), [
    (2, "boolean"), ("yes", "boolean"), ("4.5", "bigint"), (1.5, "integer"),
    (b"\xff", "text"), ("x", "tsvector"),
])
def test_values_that_do_not_fit_are_refused(value, pg_type) -> None:
    with pytest.raises((ValueError, UnicodeDecodeError)):
        to_postgres(value, pg_type)


def test_the_migrated_config_names_the_new_databases_and_keeps_the_rest(tmp_path) -> None:
    raw = {"server_name": "shops.example", "commerce": {"port": 9010, "as_token": "a" * 20}}
    config = parse_config(raw, base_dir=tmp_path)
    after = migrated_config(raw, tmp_path, SERVER + "/", "shop_",
                            plan(config, SERVER, "shop_"))
    assert after.synapse.database == f"{SERVER}/shop_synapse"
    assert after.commerce.database == f"{SERVER}/shop_commerce"
    assert after.contacts.database == f"{SERVER}/shop_contacts"
    assert (after.scale.postgres, after.scale.database_prefix) == (SERVER, "shop_")
    assert (after.server_name, after.commerce.port, after.commerce.as_token) == (
        "shops.example", 9010, "a" * 20)
    assert raw == {"server_name": "shops.example",
                   "commerce": {"port": 9010, "as_token": "a" * 20}}, "input left as it was"
    with pytest.raises(ConfigError, match="scale.postgres"):
        migrated_config(raw, tmp_path, "mysql://db", "shop_", [])


def test_backup_path_sits_beside_the_config() -> None:
    assert backup_path(Path("/srv/mercato.yaml"), datetime(2025, 3, 4, 5, 6, 7)) == Path(
        "/srv/mercato.yaml.sqlite-20250304-050607")


# -- a commerce database, copied for real ---------------------------------------------------


async def _sqlite_commerce(tmp_path: Path) -> Path:
    """A commerce database as the appservice leaves it: a shop, its channel, a follower, two
    campaigns (with a gap in their IDs) and a claimed coupon."""
    path = tmp_path / "commerce.db"
    known = known_upgrade_tables("commerce")
    await create_schema(f"sqlite:{path}", "commerce", [
        known[name] for name in ("commerce_version", "mercato_inbox_version", "mx_version")])
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO merchant (slug, name, mxid, owner_mxid, status, created_at) "
                   "VALUES ('boots', 'Boots', '@shop_boots:x', '@o:x', 'approved', 1)")
        db.execute("INSERT INTO channel VALUES ('!c:x', 'boots', '#shop_boots:x', 'Boots', 1, "
                   "NULL, 2)")
        db.execute("INSERT INTO follower VALUES ('!c:x', '@buyer:x', 3)")
        for campaign_id in (1, 5):
            db.execute("INSERT INTO campaign (id, merchant_slug, kind, fields, state, "
                       "created_by, created_at, silent) VALUES (?, 'boots', 'text', "
                       "'{\"title\": \"Sale\"}', 'sent', '@o:x', 4, 0)", (campaign_id,))
        db.execute("INSERT INTO coupon (id, merchant_slug, title, stock, expires_at, "
                   "created_by, created_at) VALUES (3, 'boots', '10% off', 1, 9, '@o:x', 5)")
        db.execute("INSERT INTO coupon_code (code, coupon_id, merchant_slug, user_id, "
                   "claimed_at) VALUES ('ABCDE12345', 3, 'boots', '@buyer:x', 6)")
    return path


async def copy(path: Path, url: str) -> dict[str, int]:
    tables = sqlite_upgrade_tables(path, known_upgrade_tables("commerce"))
    return await copy_component(Target("commerce", path, "", url), tables)


async def test_a_component_database_is_copied_with_its_rows_and_sequences(
        tmp_path, postgres_url: str) -> None:
    path = await _sqlite_commerce(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    counts = await copy(path, postgres_url)
    assert (counts["merchant"], counts["follower"], counts["campaign"],
            counts["coupon_code"]) == (1, 1, 2, 1)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before, \
        "the SQLite files must stay as they were"

    conn = await asyncpg.connect(postgres_url)
    try:
        assert await conn.fetchval("SELECT is_primary FROM channel") is True
        assert await conn.fetchval("SELECT user_id FROM coupon_code WHERE coupon_id = 3") == \
            "@buyer:x"
        # New rows get IDs after the copied ones, never a copied ID again.
        new_id = await conn.fetchval(
            "INSERT INTO campaign (merchant_slug, kind, fields, state, created_by, "
            "created_at) VALUES ('boots', 'text', '{}', 'draft', '@o:x', 7) RETURNING id")
        assert new_id == 6
        with contextlib.closing(sqlite3.connect(path)) as db:
            version = db.execute("SELECT version FROM commerce_version").fetchone()[0]
        assert await conn.fetchval("SELECT version FROM commerce_version") == version
    finally:
        await conn.close()


async def test_a_row_that_does_not_fit_leaves_postgres_without_rows(
        tmp_path, postgres_url: str) -> None:
    path = await _sqlite_commerce(tmp_path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE channel SET is_primary = 7")
    with pytest.raises(MigrationError, match=r"commerce.channel, row 1: 7 does not fit a "
                                             r"boolean column; nothing was copied"):
        await copy(path, postgres_url)
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM merchant") == 0
    finally:
        await conn.close()


async def test_an_older_sqlite_schema_is_refused_before_anything_is_written(
        tmp_path, postgres_url: str) -> None:
    path = await _sqlite_commerce(tmp_path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE commerce_version SET version = 2")
    with pytest.raises(MigrationError, match="schema version 2 of commerce_version.*mercato up"):
        await copy(path, postgres_url)
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await conn.close()


def test_every_upgrade_table_of_a_component_is_known() -> None:
    assert {"commerce_version", "mercato_inbox_version", "mx_version"} <= set(
        known_upgrade_tables("commerce"))
    assert {"contacts_version", "mercato_inbox_version", "mx_version"} <= set(
        known_upgrade_tables("contacts"))


async def test_tables_of_an_unknown_upgrade_table_are_refused(
        tmp_path, postgres_url: str) -> None:
    path = await _sqlite_commerce(tmp_path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE plugin_version (version INTEGER PRIMARY KEY)")
    with pytest.raises(MigrationError, match="'plugin_version', which this version of Mercato "
                                             "does not know"):
        await copy(path, postgres_url)
