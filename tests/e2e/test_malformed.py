"""A malformed or forbidden packet ends only its own connection: 5.0 clients with a session get a
DISCONNECT with the reason code first, 3.1.1 clients are closed, and everybody else keeps working."""

import pytest

from pahoclient import V5, unique
from rawclient import CONNACK, DISCONNECT, connect_packet, fixed, utf8

# (name, bytes sent after a successful CONNECT, acceptable 5.0 DISCONNECT reasons); the names ending
# in "-v5" are only malformed in 5.0 (3.1.1 PUBLISH has no properties: those bytes are a payload there)
AFTER_CONNECT = [
    ("publish-qos-3", fixed(3, 0x06, utf8("a/b") + b"\x00\x01" + b"\x00"), {0x81}),  # [MQTT-3.3.1-4]
    ("subscribe-bad-flags", fixed(8, 0x00, b"\x00\x01\x00" + utf8("a/b") + b"\x01"), {0x81}),  # [MQTT-3.8.1-1]
    ("remaining-length-5-bytes", bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]), {0x81}),
    ("topic-invalid-utf8", fixed(3, 0x00, b"\x00\x02\xc3\x28" + b"\x00payload"), {0x81}),  # [MQTT-1.5.4-1]
    ("topic-with-nul", fixed(3, 0x00, b"\x00\x03a\x00b" + b"\x00payload"), {0x81}),  # [MQTT-1.5.4-2]
    ("publish-topic-with-wildcard", fixed(3, 0x00, utf8("a/+") + b"\x00x"), {0x81, 0x82, 0x90}),  # [MQTT-3.3.2-2]
    ("string-longer-than-packet", fixed(3, 0x00, b"\x00\x40a/b"), {0x81}),
    ("reserved-packet-type-0", bytes([0x00, 0x00]), {0x81, 0x82}),
    ("subscribe-no-filters", fixed(8, 0x02, b"\x00\x01\x00"), {0x81, 0x82}),  # [MQTT-3.8.3-2]
    ("subscribe-reserved-option-bits", fixed(8, 0x02, b"\x00\x01\x00" + utf8("a/b") + b"\xc1"), {0x81}),
    ("properties-length-past-end-v5", fixed(3, 0x00, utf8("a/b") + b"\x09\x01"), {0x81}),
    ("duplicate-property-v5", fixed(3, 0x00, utf8("a/b") + b"\x04\x01\x00\x01\x00" + b"x"), {0x81, 0x82}),
    ("pingreq-with-body", fixed(12, 0x00, b"\x00"), {0x81}),
    # Only the server sends Subscription Identifiers in a PUBLISH [MQTT-3.3.4-6]: a protocol error.
    ("publish-with-subscription-identifier-v5", fixed(3, 0x02, utf8("a/b") + b"\x00\x01" + b"\x02\x0b\x01" + b"x"),
     {0x82}),
]


CASES = [pytest.param(v, name, data, reasons, id=f"{'5.0' if v == V5 else '3.1.1'}-{name}")
         for v in (4, V5) for name, data, reasons in AFTER_CONNECT if v == V5 or not name.endswith("-v5")]


@pytest.mark.parametrize("version,name,data,reasons", CASES)
def test_malformed_packet_closes_only_its_connection(broker, clients, raw, version, name, data, reasons):
    bystander = clients(broker, version)
    bystander.subscribe("bystander/t", 1)
    r = raw(broker, version)
    r.connect(client_id=unique())
    r.send(data)
    got = r.wait_closed()
    if version == V5:
        assert got and got[-1].type == DISCONNECT and got[-1].reason in reasons, (
            f"{name}: expected DISCONNECT with one of {[hex(x) for x in reasons]}, got {got!r}")
    else:
        assert all(p.type != DISCONNECT for p in got), f"3.1.1 has no server DISCONNECT: {got!r}"
    other = clients(broker, version)
    other.publish("bystander/t", b"still works", 1)
    assert bystander.expect().payload == b"still works"
    assert not bystander.disconnected.is_set()


@pytest.mark.parametrize("name,data", [
    ("http-request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("publish-before-connect", fixed(3, 0x00, utf8("a/b") + b"x")),
    ("bad-protocol-name", connect_packet(4, "x", protocol_name="MQTX")),
    ("connect-reserved-flag", None),
    ("connect-will-qos-3", None),
    ("truncated-connect", fixed(1, 0, connect_packet(5, "abc")[2:-2])),  # client id says 3 bytes, has 1
])
def test_bad_first_packet_closes_connection(broker, clients, raw, name, data):
    if name == "connect-reserved-flag":
        p = bytearray(connect_packet(4, "x"))
        p[9] |= 0x01  # connect flags byte: reserved bit [MQTT-3.1.2-3]
        data = bytes(p)
    if name == "connect-will-qos-3":
        p = bytearray(connect_packet(4, "x"))
        p[9] |= 0x04 | 0x18  # will flag with QoS 3 [MQTT-3.1.2-14]
        data = bytes(p)
    bystander = clients(broker, V5)
    r = raw(broker, 4)
    r.send(data)
    got = r.wait_closed()
    assert not any(p.type == CONNACK and p.reason == 0 for p in got), f"{name} was accepted: {got!r}"
    bystander.roundtrip()


def test_many_malformed_connections_in_a_row(broker, clients, raw):
    """Nothing a client sends may crash the broker: a burst of bad connections, then normal service."""
    for i in range(30):
        r = raw(broker, V5)
        r.connect(client_id=unique())
        name, data, _ = AFTER_CONNECT[i % len(AFTER_CONNECT)]
        r.send(data)
        r.wait_closed()
    clients(broker, V5).roundtrip()


def test_publish_with_a_subscription_identifier_is_neither_acknowledged_nor_routed(broker, clients, raw):
    """[MQTT-3.3.4-6]: DISCONNECT 0x82, no PUBACK, and the subscriber gets nothing."""
    sub = clients(broker, V5)
    sub.subscribe("a/b", 1)
    r = raw(broker, V5)
    r.connect(client_id=unique())
    r.publish("a/b", b"x", 1, props={"SubscriptionIdentifier": 1})
    got = r.wait_closed()
    assert [(p.type, p.reason) for p in got] == [(DISCONNECT, 0x82)], got
    sub.expect_none()
