"""Memory bounds that hold (issue 10), shown by the broker's resident memory: a subscriber that stops
reading pins at most its session's byte bound (limits.max_queued_bytes, which covers what waits in
its connection's output as well as its inflight and queued messages); retained messages are bounded
in bytes, in all and each; an identity may hold only so many sessions and connections. Every refusal
is an event in the log (docs/events.md).

The sanitizer build keeps freed memory in a quarantine (256 MB by default) that would look like
growth; these brokers run without it (ASAN_OPTIONS), so that resident memory follows what the broker
holds.
"""

import os
import socket
import time

import pytest

from pahoclient import V311, V5, unique
from rawclient import PUBACK, SUBACK, RawClient, subscribe_packet
from topics_helpers import PASSWORD, user_add

MiB = 1024 * 1024
NO_QUARANTINE = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""),
                                                        "quarantine_size_mb=0",
                                                        "thread_local_quarantine_size_kb=0"]))}
QUOTA_EXCEEDED = {V5: 0x97, V311: 0x03}


def settle(broker, seconds=1.0):
    """Resident memory after the broker has had `seconds` to finish what it was doing."""
    time.sleep(seconds)
    return broker.rss()


def stop_reading(raw_client):
    """A subscriber that never reads again: a small receive buffer, and nothing calls recv."""
    raw_client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)


def test_a_subscriber_that_stops_reading_pins_at_most_its_byte_bound(start_broker, raw, clients):
    """Two subscribers stop reading, one at QoS 1 (Receive Maximum 64) and one at QoS 0, while
    150 MB of 1 MB messages are published to them. Each may hold max_queued_bytes (8 MiB here), the
    bytes its connection has not written included. Past it, QoS 0 is dropped and counted; QoS 1
    slows the publisher (docs/broker.md, flow control) until the subscriber, having acknowledged
    nothing for slow_subscriber_timeout, is disconnected."""
    b = start_broker({"limits": {"max_queued_bytes": 8 * MiB, "slow_subscriber_timeout": 2}},
                     env=NO_QUARANTINE)
    stuck = []
    for qos in (1, 0):
        r = raw(b, V5)
        r.connect(client_id=unique("stuck"), props={"ReceiveMaximum": 64})
        r.send(subscribe_packet(V5, 1, [("big/t", qos)]))
        assert r.expect(SUBACK).codes == [qos]
        stop_reading(r)
        stuck.append(r)
    pub = raw(b, V5)
    pub.connect(client_id=unique("pub"))
    payload = os.urandom(1_000_000)
    before = settle(b, 0.5)
    for i in range(150):
        pub.publish("big/t", payload, 1)
        assert pub.expect(PUBACK, timeout=30).reason == 0
    grown = settle(b) - before
    print(f"resident memory grew by {grown / MiB:.1f} MiB")
    # Two sessions at 8 MiB each, and some slack for the allocator and the publisher's reads.
    assert grown < 2 * 8 * MiB + 16 * MiB, f"the broker grew by {grown / MiB:.1f} MiB for two stuck subscribers"
    watch = clients(b, V5)
    watch.subscribe("$SYS/broker/messages/dropped", 0)
    dropped, deadline = 0, time.monotonic() + 25  # the retained value, then the next $SYS update
    while dropped <= 100 and time.monotonic() < deadline:
        dropped = int(watch.expect(timeout=15).payload)
    assert dropped > 100, "the QoS 0 subscriber's messages past its bound are dropped and counted"


def push(sock, data, seconds):
    """Sends as much of `data` as the broker takes within `seconds`, never blocking; returns how much."""
    sock.setblocking(False)
    sent, deadline = 0, time.monotonic() + seconds
    while sent < len(data) and time.monotonic() < deadline:
        try:
            sent += sock.send(data[sent:sent + 65536])
        except BlockingIOError:
            time.sleep(0.01)
    return sent


@pytest.mark.parametrize("requests", ["pingreq", "resubscribe"])
def test_a_client_that_does_not_read_its_answers_cannot_grow_its_output(start_broker, raw, clients, requests):
    """A client asks and never reads the answers: 60 MB of PINGREQs (30 million PINGRESPs), or
    SUBSCRIBEs to 5 MB of retained messages, 40 times over. The broker stops reading from it once
    max_queued_bytes (2 MiB here) waits to be written, and the retained replays stop at the session's
    bound: memory stays bounded."""
    b = start_broker({"limits": {"max_queued_bytes": 2 * MiB}}, env=NO_QUARANTINE)
    if requests == "resubscribe":
        pub = clients(b, V5)
        for i in range(500):
            pub.publish(f"r/{i}", os.urandom(10_000), 1, retain=True)
        data = b"".join(subscribe_packet(V5, i + 1, [("r/#", 0)]) for i in range(40))
    else:
        data = bytes([0xC0, 0x00]) * 30_000_000
    r = raw(b, V5)
    r.connect(client_id=unique("deaf"))
    stop_reading(r)
    before = settle(b, 0.5)
    sent = push(r.sock, data, 10)
    grown = settle(b) - before
    print(f"{sent / MiB:.1f} MiB sent, resident memory grew by {grown / MiB:.1f} MiB")
    assert grown < 2 * MiB + 16 * MiB, f"the broker grew by {grown / MiB:.1f} MiB for one client"
    clients(b, V5).roundtrip()  # everybody else is served


def test_retained_messages_are_bounded_in_bytes(start_broker, clients):
    """200 retained messages of 200 KB on distinct topics are 40 MB; max_retained_bytes is 8 MiB: the
    store keeps about 40 of them and refuses the rest (still delivered live), and memory follows.
    The 40 MB are more than a client's default byte burst (20 MiB): the byte rate is lifted, so that
    every limit_reached event is the retained store's."""
    b = start_broker({"limits": {"max_retained_bytes": 8 * MiB, "publish_bytes_rate": 0}}, env=NO_QUARANTINE)
    live = clients(b, V5)
    live.subscribe("r/#", 1)
    pub = clients(b, V5)
    payload = os.urandom(200_000)
    before = settle(b, 0.5)
    for i in range(200):
        pub.publish(f"r/{i}", payload, 1, retain=True)
    assert len(live.expect_n(200, timeout=60)) == 200, "every message is delivered live"
    grown = settle(b) - before
    print(f"resident memory grew by {grown / MiB:.1f} MiB")
    assert grown < 8 * MiB + 16 * MiB, f"the broker grew by {grown / MiB:.1f} MiB for 8 MiB of retained messages"
    late = clients(b, V5)
    late.subscribe("r/#", 1)
    kept = late.expect_within(3.0)
    assert 30 <= len(kept) <= 41, f"{len(kept)} retained messages kept"
    refused = b.events("limit_reached")
    assert refused and all("max_retained_bytes" in e["subject"] for e in refused), refused
    watch = clients(b, V5)
    watch.subscribe([("$SYS/broker/retained/bytes", 0), ("$SYS/broker/retained/refused", 0)])
    values = {}
    deadline = time.monotonic() + 15
    while len(values) < 2 or int(values["$SYS/broker/retained/refused"]) < 150:
        assert time.monotonic() < deadline, values
        m = watch.expect(timeout=15)
        values[m.topic] = m.payload
    assert int(values["$SYS/broker/retained/bytes"]) <= 8 * MiB


def test_a_retained_message_over_the_per_message_bound_is_delivered_not_stored(start_broker, clients, version):
    b = start_broker({"limits": {"max_retained_message_bytes": 100_000}})
    live = clients(b, version)
    live.subscribe("big/retained", 1)
    pub = clients(b, version)
    pub.publish("big/retained", b"x" * 150_000, 1, retain=True)
    pub.publish("small/retained", b"y" * 1000, 1, retain=True)
    assert live.expect().payload == b"x" * 150_000
    late = clients(b, version)
    late.subscribe([("big/retained", 1), ("small/retained", 1)])
    m = late.expect()
    assert m.topic == "small/retained"
    late.expect_none()


# ----------------------------------------------------------------------------------------------
# Sessions and connections per identity


@pytest.fixture(scope="module")
def identity_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("identity-users") / "firehook.db"
    for name in ("alice", "bob"):
        user_add(db, name, ["device"])
    return db


def identity_broker(start_broker, identity_db, **limits):
    return start_broker({
        "listener": [{"name": "users", "address": "127.0.0.1", "port": 0, "protocol": "mqtt",
                      "auth": ["password"], "allow_anonymous": False}],
        "auth": {"password": {"database": str(identity_db)}},
        "limits": limits,
    })


def login(broker, version, user, client_id, clean=True, expect_rc=0):
    r = RawClient(broker.host, broker.port, version)
    props = {"SessionExpiryInterval": 600} if version == V5 and not clean else None
    r.connect(client_id=client_id, clean=clean, props=props, username=user, password=PASSWORD.encode(),
              expect_rc=expect_rc)
    return r


def test_sessions_per_identity_are_limited(start_broker, identity_db, version):
    """One identity cannot fill the broker with offline persistent sessions: the sixth is refused
    (5.0 CONNACK 0x97, 3.1.1 0x03) and logged; another identity is not affected; an ended session
    makes room."""
    b = identity_broker(start_broker, identity_db, max_sessions_per_identity=5)
    ids = [unique("s") for _ in range(6)]
    for client_id in ids[:5]:
        login(b, version, "alice", client_id, clean=False).close()  # offline, kept
    login(b, version, "alice", ids[5], clean=False, expect_rc=QUOTA_EXCEEDED[version]).wait_closed()
    e = b.wait_for_event("auth_denied", client_id=ids[5], subject="limits.max_sessions_per_identity")
    assert (e["identity"], e["reason_code"]) == ("alice", "0x97"), e
    login(b, version, "bob", ids[5], clean=False).close()
    # Ending one of alice's sessions (clean start, then a normal DISCONNECT) frees a place.
    login(b, version, "alice", ids[0], clean=True).disconnect()
    time.sleep(0.3)
    login(b, version, "alice", unique("s"), clean=False).close()


def test_connections_per_identity_are_limited(start_broker, identity_db, version):
    """A stolen credential cannot take every connection: the fourth of one identity is refused (5.0
    CONNACK 0x97, 3.1.1 0x03) and logged, others still connect, and the identity can still take over
    one of its own connections (that replaces a connection, it does not add one)."""
    b = identity_broker(start_broker, identity_db, max_connections_per_identity=3)
    ids = [unique("c") for _ in range(3)]
    held = [login(b, version, "alice", client_id) for client_id in ids]
    login(b, version, "alice", unique("c"), expect_rc=QUOTA_EXCEEDED[version]).wait_closed()
    b.wait_for_event("auth_denied", identity="alice", subject="limits.max_connections_per_identity")
    login(b, version, "bob", unique("c"))
    login(b, version, "alice", ids[0])
    held[0].wait_closed()


def test_max_connections_refusals_are_logged(start_broker, raw):
    b = start_broker({"limits": {"max_connections": 2}})
    held = [raw(b, V5) for _ in range(2)]
    for r in held:
        r.connect(client_id=unique())
    refused = raw(b, V5)
    assert refused.wait_closed() == []
    e = b.wait_for_event("connection_refused", subject="limits.max_connections")
    assert (e["peer"], e["decision"], e["level"]) == ("127.0.0.1", "deny", "warning"), e
