"""Shutdown on SIGTERM and SIGINT: 5.0 clients get DISCONNECT 0x8B (Server shutting down), 3.1.1
clients are closed, wills are published before the connections end, the broker exits 0."""

import signal

import pytest

from pahoclient import V5, V311, unique
from rawclient import DISCONNECT

SERVER_SHUTTING_DOWN = 0x8B


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_disconnects_clients_and_exits_0(start_broker, clients, raw, sig):
    b = start_broker()
    v5 = clients(b, V5)
    v311 = clients(b, V311)
    r = raw(b, 5)
    r.connect(client_id=unique("raw"))
    b.stop(sig)  # asserts exit code 0 and a clean stderr
    assert v5.wait_disconnected() == SERVER_SHUTTING_DOWN
    assert v311.wait_disconnected() == 7, "3.1.1 has no DISCONNECT from the server: only a close"
    got = r.wait_closed()
    assert [p.type for p in got] == [DISCONNECT], f"5.0 raw client got {got!r}"
    assert got[0].body[0] == SERVER_SHUTTING_DOWN


def test_shutdown_publishes_wills_before_disconnecting(start_broker, clients, version):
    """The broker ends the connections, not the clients: each will is due [MQTT-3.1.2-8], and is
    delivered to the subscribers that are still connected before they are disconnected."""
    b = start_broker()
    watch = clients(b, version)
    # QoS 0: a PUBACK written into the socket the broker is closing could end paho's loop before
    # it has read every will.
    watch.subscribe("shutwill/#", 0)
    with_will = [clients(b, version, will={"topic": f"shutwill/{i}", "payload": b"gone", "qos": 1})
                 for i in range(3)]
    # A will with a delay longer than the session: the session ends with the broker, so it goes too.
    delayed = clients(b, V5, props={"SessionExpiryInterval": 30},
                      will={"topic": "shutwill/delayed", "payload": b"late", "qos": 1,
                            "props": {"WillDelayInterval": 20}})
    b.stop(signal.SIGTERM)
    got = sorted(m.topic for m in watch.expect_within(1.0))
    # Sessions do not outlive the process, so the delayed will goes as its session ends [MQTT-3.1.3-9].
    assert set(got) == {"shutwill/0", "shutwill/1", "shutwill/2", "shutwill/delayed"}, got
    assert len(got) == 4, f"each will exactly once: {got}"
    for c in with_will + [delayed, watch]:
        c.wait_disconnected()


def test_shutdown_with_no_clients_exits_0(start_broker):
    b = start_broker()
    b.stop(signal.SIGTERM)
