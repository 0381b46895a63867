"""Limits from [limits]: connections, CONNECT timeout, subscriptions per client, topic levels and
length, packet sizes both ways, topic aliases both ways."""

import struct
import time

import pytest

from pahoclient import V5, Client, unique
from rawclient import (CONNACK, DISCONNECT, PUBACK, PUBLISH, connect_packet, fixed, publish_packet,
                       subscribe_packet, utf8)


def refused(r, packet, what):
    """Sends `packet` on connected raw client `r`; returns the answer, which must be a refusal:
    a SUBACK/PUBACK reason >= 0x80, or the connection closed (with or without a DISCONNECT)."""
    r.send(packet)
    try:
        p = r.recv()
    except AssertionError as e:
        assert "closed" in str(e), e
        return None
    if p.type == DISCONNECT:
        r.wait_closed()
        return p
    codes = p.codes if p.codes is not None else [p.reason]
    assert codes and codes[0] >= 0x80, f"{what} was accepted: {p!r}"
    return p


def test_max_connections(start_broker, clients, raw):
    b = start_broker({"limits": {"max_connections": 3}})
    held = [clients(b, V5) for _ in range(3)]
    r = raw(b, V5)
    try:
        r.send(connect_packet(V5, unique()))
        got = r.wait_closed()
    except (ConnectionResetError, BrokenPipeError):
        got = []  # refused at accept: also fine
    assert not any(p.type == CONNACK and p.reason == 0 for p in got), f"4th connection accepted: {got!r}"
    for p in got:
        if p.type == CONNACK:
            assert p.reason in (0x89, 0x97, 0x9F, 0x88), f"refusal reason {p.reason:#04x}"
    held[0].disconnect()
    # the freed slot becomes usable (the broker notices the close asynchronously: retry, bounded).
    # A CONNECT refused at accept shows only as a lost connection, so each try waits 1 s at most:
    # one try with the default 5 s could outlast the whole deadline.
    deadline = time.monotonic() + 5.0
    while True:
        c = Client(b, V5)
        try:
            c.connect(timeout=1.0)
            c.roundtrip()
            c.disconnect()
            break
        except AssertionError:
            c.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    held[1].roundtrip()


def test_connection_without_connect_closed_after_connect_timeout(start_broker, raw, clients):
    b = start_broker({"limits": {"connect_timeout": 1}})
    silent = raw(b, V5)
    partial = raw(b, V5)
    partial.send(connect_packet(V5, unique())[:3])  # a CONNECT that never completes
    start = time.monotonic()
    assert silent.is_open(0.7), "closed well before connect_timeout"
    silent.wait_closed(timeout=4.0)
    partial.wait_closed(timeout=1.0)
    assert time.monotonic() - start <= 4.5
    # a client that does send CONNECT in time stays connected past the timeout
    ok = clients(b, V5)
    assert not ok.disconnected.wait(1.5)
    ok.roundtrip()


def test_max_subscriptions_per_client(start_broker, clients, version):
    b = start_broker({"limits": {"max_subscriptions_per_client": 3}})
    c = clients(b, version)
    assert c.subscribe([("ms/1", 1), ("ms/2", 1), ("ms/3", 1)]) == [1, 1, 1]
    codes = c.subscribe("ms/4", 1)
    assert codes[0] >= 0x80, f"a 4th subscription was granted: {codes}"
    if version == V5:
        assert codes[0] == 0x97, f"5.0 reason {codes[0]:#04x}, expected 0x97 quota exceeded"
    assert c.subscribe("ms/2", 2) == [2], "re-subscribing an existing filter replaces it, within the limit"
    pub = clients(b, version)
    pub.publish("ms/4", b"no", 1)
    pub.publish("ms/2", b"yes", 1)
    assert c.expect().payload == b"yes"
    c.unsubscribe(["ms/1"])
    assert c.subscribe("ms/5", 1) == [1], "unsubscribing frees a slot"


def test_max_topic_levels(start_broker, clients, raw, version):
    b = start_broker({"limits": {"max_topic_levels": 4}})
    watch = clients(b, version)
    watch.subscribe("#", 1)
    ok = clients(b, version)
    assert ok.subscribe("a/b/c/d", 1) == [1]
    r = raw(b, version)
    r.connect(client_id=unique())
    refused(r, subscribe_packet(version, 1, [("a/b/c/d/e", 1)]), "a 5-level filter")
    r = raw(b, version)
    r.connect(client_id=unique())
    refused(r, publish_packet(version, "a/b/c/d/e", b"deep", 1, pid=1), "a 5-level topic")
    ok.publish("a/b/c/d", b"fine", 1)
    m = watch.expect()
    assert (m.topic, m.payload) == ("a/b/c/d", b"fine"), f"the over-deep message was routed: {m!r}"


def test_max_topic_length(start_broker, clients, raw, version):
    b = start_broker({"limits": {"max_topic_length": 64}})
    watch = clients(b, version)
    watch.subscribe("#", 1)
    r = raw(b, version)
    r.connect(client_id=unique())
    refused(r, publish_packet(version, "t/" + "x" * 63, b"long", 1, pid=1), "a 65-byte topic")
    pub = clients(b, version)
    pub.publish("t/" + "x" * 62, b"fits", 1)
    m = watch.expect()
    assert m.payload == b"fits", f"the over-long topic was routed: {m!r}"


def test_packet_larger_than_broker_maximum(start_broker, raw, clients, version):
    b = start_broker({"limits": {"max_packet_size": 1024}})
    watch = clients(b, version)
    watch.subscribe("big/#", 1)
    r = raw(b, version)
    ack = r.connect(client_id=unique())
    if version == V5:
        assert ack.props.get("MaximumPacketSize") == 1024
    r.publish("big/t", b"x" * 2000, 1)
    got = r.wait_closed()
    if version == V5:
        assert got and got[-1].type == DISCONNECT and got[-1].reason == 0x95, (
            f"expected DISCONNECT 0x95 (packet too large), got {got!r}")
    else:
        assert all(p.type != PUBACK for p in got), f"oversized publish was acknowledged: {got!r}"
    pub = clients(b, version)
    pub.publish("big/t", b"y" * 900, 1)
    m = watch.expect()
    assert m.payload == b"y" * 900, "oversized message must not be routed; a fitting one still is"


def test_oversized_remaining_length_rejected_from_header(start_broker, raw, clients):
    """A header announcing 200 MB is refused without waiting for (or buffering) the body."""
    b = start_broker({"limits": {"max_packet_size": 1024}})
    r = raw(b, V5)
    r.connect(client_id=unique())
    header = bytes([0x32]) + bytes([0x80, 0x80, 0x80, 0x60])  # PUBLISH QoS 1, remaining length ~201 MB
    r.send(header + b"\x00\x03a/b\x00\x01")
    got = r.wait_closed(timeout=3.0)
    assert got and got[-1].type == DISCONNECT and got[-1].reason == 0x95, got
    clients(b, V5).roundtrip()


def test_v5_broker_respects_client_maximum_packet_size(broker, clients):
    """[MQTT-3.1.2-24/25]: the broker does not send a packet larger than the client's maximum; it
    discards that message for this client and carries on."""
    small = clients(broker, V5, props={"MaximumPacketSize": 200})
    small.subscribe("mps/t", 1)
    big = clients(broker, V5)
    big.subscribe("mps/t", 1)
    pub = clients(broker, V5)
    pub.publish("mps/t", b"L" * 500, 1)
    pub.publish("mps/t", b"small", 1)
    assert small.expect().payload == b"small", "the oversized message must be skipped, the next one sent"
    assert not small.disconnected.is_set()
    assert [m.payload for m in big.expect_n(2)] == [b"L" * 500, b"small"]


def test_v5_topic_alias_from_client(broker, raw, clients, version):
    """A 5.0 publisher sets alias 1 with a topic, then sends empty topic + alias 1;
    subscribers (either version) get the full topic name both times."""
    sub = clients(broker, version)
    sub.subscribe("alias/#", 1)
    r = raw(broker, V5)
    ack = r.connect(client_id=unique())
    assert ack.props.get("TopicAliasMaximum") == 64
    r.publish("alias/long/topic/name", b"first", 1, props={"TopicAlias": 1})
    assert r.expect(PUBACK).reason in (0, 0x10)
    r.publish("", b"second", 1, props={"TopicAlias": 1})
    assert r.expect(PUBACK).reason in (0, 0x10)
    r.publish("alias/other", b"third", 1, props={"TopicAlias": 1})  # remaps alias 1
    r.expect(PUBACK)
    r.publish("", b"fourth", 1, props={"TopicAlias": 1})
    r.expect(PUBACK)
    got = [(m.topic, m.payload) for m in sub.expect_n(4)]
    assert got == [("alias/long/topic/name", b"first"), ("alias/long/topic/name", b"second"),
                   ("alias/other", b"third"), ("alias/other", b"fourth")]


@pytest.mark.parametrize("case,alias,topic,reasons", [
    ("above-maximum", 65, "a/t", {0x94}),             # [MQTT-3.3.2-9]
    ("zero", 0, "a/t", {0x94, 0x82, 0x81}),          # [MQTT-3.3.2-8]: the spec names no code for 0
    ("unknown-alias-empty-topic", 5, "", {0x82}),    # an alias never set: Protocol Error
])
def test_v5_bad_topic_alias_disconnects(broker, raw, clients, case, alias, topic, reasons):
    r = raw(broker, V5)
    r.connect(client_id=unique())
    # built by hand: paho's Properties refuses alias 0
    props = bytes([0x23]) + struct.pack("!H", alias)
    body = utf8(topic) + struct.pack("!H", 1) + bytes([len(props)]) + props + b"x"
    r.send(fixed(PUBLISH, 0x02, body))
    got = r.wait_closed()
    assert got and got[-1].type == DISCONNECT and got[-1].reason in reasons, (
        f"{case}: expected DISCONNECT with one of {[hex(x) for x in reasons]}, got {got!r}")
    clients(broker, V5).roundtrip()


def test_v5_broker_assigns_topic_aliases_to_client_that_allows_them(broker, raw, clients):
    r = raw(broker, V5)
    r.connect(client_id=unique(), props={"TopicAliasMaximum": 5})
    r.subscribe([("ta/#", 1)])
    pub = clients(broker, V5)
    topic = "ta/a/rather/long/topic/name/that/is/worth/an/alias"
    for i in range(3):
        pub.publish(topic, str(i).encode(), 1)
    got = [r.expect_publish() for _ in range(3)]
    assert [(p.topic, p.payload) for p in got] == [(topic, b"0"), (topic, b"1"), (topic, b"2")], got
    aliases = [p.props.get("TopicAlias") for p in got]
    assert all(a is None or 1 <= a <= 5 for a in aliases), f"alias outside the client's maximum 5: {aliases}"
    assert any(p.props.get("TopicAlias") and p.wire_topic == "" for p in got), (
        f"no PUBLISH used an alias in place of the topic: {[(p.wire_topic, p.props) for p in got]}")


def test_v5_no_topic_alias_to_client_that_did_not_allow_them(broker, raw, clients):
    r = raw(broker, V5)
    r.connect(client_id=unique())  # Topic Alias Maximum absent = 0 [MQTT-3.1.2-26]
    r.subscribe([("tn/#", 1)])
    pub = clients(broker, V5)
    for i in range(3):
        pub.publish("tn/some/topic", str(i).encode(), 1)
    for _ in range(3):
        p = r.expect_publish()
        assert "TopicAlias" not in p.props and p.wire_topic == "tn/some/topic", p


def test_paho_subscriber_gets_topics_while_publisher_uses_aliases(broker, clients):
    sub = clients(broker, V5)
    sub.subscribe("tp/#", 1)
    pub = clients(broker, V5)
    pub.publish("tp/x", b"1", 1, props={"TopicAlias": 3})
    pub.publish("tp/x", b"2", 1, props={"TopicAlias": 3})
    assert [(m.topic, m.payload) for m in sub.expect_n(2)] == [("tp/x", b"1"), ("tp/x", b"2")]
