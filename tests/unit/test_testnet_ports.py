"""Ports handed to the services of a test network never collide."""

import socket

from mercato_ops.testnet import free_port, free_port_block


def test_free_port_never_repeats_even_when_nothing_listens() -> None:
    # The kernel's port 0 hands out the same port again once the probe socket is
    # closed; two services of one network then shared a port.
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert all(20000 <= port < 32000 for port in ports)


def test_a_block_does_not_overlap_single_ports_or_a_taken_port() -> None:
    single = {free_port() for _ in range(20)}
    base = free_port_block(8)
    assert single.isdisjoint(range(base, base + 8))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", base + 8))
        sock.listen()
        port = free_port()
        assert port != base + 8
