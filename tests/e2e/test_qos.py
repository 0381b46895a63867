"""QoS 0, 1 and 2 in both directions, retransmission and exactly-once across reconnects, the
inflight window (Receive Maximum / max_inflight), offline queues and their bound."""

import re
import time

import pytest

from pahoclient import QUIET, V5, V311, unique
from rawclient import PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, sub_options

SESSION = {"SessionExpiryInterval": 60}


def persistent(version):
    return {"clean": False, "props": SESSION if version == V5 else None}


def raw_connect_persistent(r, cid, version, clean=False):
    return r.connect(client_id=cid, clean=clean, props=SESSION if version == V5 else None)


@pytest.mark.parametrize("pub_qos", [0, 1, 2])
def test_delivered_qos_is_min_of_publish_and_subscription(broker, clients, version, pub_qos):
    subs = []
    for q in (0, 1, 2):
        s = clients(broker, version)
        assert s.subscribe("qos/t", q) == [q]
        subs.append(s)
    pub = clients(broker, version)
    payload = bytes(range(256)) * 4  # binary payload survives unchanged
    pub.publish("qos/t", payload, pub_qos)  # waits for PUBACK / PUBCOMP as the QoS needs
    for q, s in enumerate(subs):
        m = s.expect()
        assert (m.topic, m.payload, m.qos) == ("qos/t", payload, min(pub_qos, q)), (
            f"subscription QoS {q}, publish QoS {pub_qos}: got QoS {m.qos}")
        assert not m.retain and not m.dup


@pytest.mark.parametrize("qos", [1, 2])
def test_raw_publish_flows_are_acknowledged(broker, raw, clients, version, qos):
    """Client to broker: PUBACK (QoS 1), or PUBREC / PUBREL / PUBCOMP (QoS 2), with our packet id."""
    sub = clients(broker, version)
    sub.subscribe("flow/t", 2)
    r = raw(broker, version)
    r.connect(client_id=unique())
    pid = r.publish("flow/t", b"x", qos, pid=4242)
    if qos == 1:
        ack = r.expect(PUBACK)
        assert ack.pid == 4242 and ack.reason == 0
    else:
        rec = r.expect(PUBREC)
        assert rec.pid == pid and rec.reason == 0
        r.ack(PUBREL, pid)
        comp = r.expect(PUBCOMP)
        assert comp.pid == pid and comp.reason == 0
    m = sub.expect()
    assert (m.payload, m.qos) == (b"x", qos)


def test_v5_puback_no_matching_subscribers(broker, raw):
    r = raw(broker, V5)
    r.connect(client_id=unique())
    r.publish("nobody/listens", b"x", 1)
    ack = r.expect(PUBACK)
    assert ack.reason in (0x00, 0x10), f"PUBACK reason {ack.reason:#04x}: success or 0x10 no matching subscribers"


@pytest.mark.parametrize("qos", [1, 2])
def test_unacknowledged_message_resent_with_dup_after_reconnect(broker, raw, clients, version, qos):
    """[MQTT-4.4.0-1]: on reconnect with a session, unacknowledged PUBLISH packets are resent
    with their original packet identifiers and DUP set."""
    cid = unique("dup")
    r = raw(broker, version)
    raw_connect_persistent(r, cid, version)
    r.subscribe([("dup/t", qos)])
    pub = clients(broker, version)
    pub.publish("dup/t", b"once", qos)
    first = r.expect_publish(ack=False)
    assert (first.payload, first.qos, first.dup) == (b"once", qos, False)
    r.close()
    r = raw(broker, version)
    ack = raw_connect_persistent(r, cid, version)
    assert ack.session_present
    again = r.expect(PUBLISH)
    assert (again.payload, again.pid, again.dup) == (b"once", first.pid, True), (
        f"resent PUBLISH {again!r}, expected payload b'once', pid {first.pid}, DUP=1")
    r.ack(PUBACK if qos == 1 else PUBREC, again.pid)
    if qos == 2:
        assert r.expect(PUBREL).pid == again.pid
        r.ack(PUBCOMP, again.pid)
    pub.publish("dup/t", b"next", qos)
    nxt = r.expect_publish()
    assert nxt.payload == b"next", f"the acknowledged message came again: {nxt!r}"


def test_qos2_exactly_once_to_subscriber_across_reconnect(broker, raw, clients, version):
    """After PUBREC the message is the receiver's; after a reconnect the broker resends PUBREL,
    never the PUBLISH again [MQTT-4.4.0-1]."""
    cid = unique("eo")
    r = raw(broker, version)
    raw_connect_persistent(r, cid, version)
    r.subscribe([("eo/t", 2)])
    pub = clients(broker, version)
    pub.publish("eo/t", b"exactly-once", 2)
    p = r.expect_publish(ack=False)
    assert p.qos == 2
    delivered = [p.payload]  # what the receiving application got
    r.ack(PUBREC, p.pid)
    assert r.expect(PUBREL).pid == p.pid
    r.close()  # lost before PUBCOMP

    r = raw(broker, version)
    assert raw_connect_persistent(r, cid, version).session_present
    again = r.recv()
    assert again.type == PUBREL and again.pid == p.pid, f"expected PUBREL for {p.pid} to be resent, got {again!r}"
    r.ack(PUBCOMP, p.pid)
    pub.publish("eo/t", b"sentinel", 2)
    nxt = r.expect_publish()
    delivered.append(nxt.payload)
    assert delivered == [b"exactly-once", b"sentinel"], f"duplicate delivery: {delivered}"


def test_qos2_exactly_once_from_publisher_across_reconnect(broker, raw, clients, version):
    """The publisher loses the connection after PUBREC and resends PUBLISH (DUP) then PUBREL:
    subscribers get the message once."""
    sub = clients(broker, version)
    sub.subscribe("eo-pub/t", 2)
    cid = unique("eop")
    r = raw(broker, version)
    raw_connect_persistent(r, cid, version)
    r.publish("eo-pub/t", b"once", 2, pid=7)
    assert r.expect(PUBREC).pid == 7
    r.close()
    r = raw(broker, version)
    assert raw_connect_persistent(r, cid, version).session_present
    r.publish("eo-pub/t", b"once", 2, pid=7, dup=True)
    assert r.expect(PUBREC).pid == 7
    r.ack(PUBREL, 7)
    assert r.expect(PUBCOMP).pid == 7
    r.publish("eo-pub/t", b"sentinel", 2, pid=8)
    assert r.expect(PUBREC).pid == 8
    r.ack(PUBREL, 8)
    assert r.expect(PUBCOMP).pid == 8
    got = [sub.expect().payload, sub.expect().payload]
    assert got == [b"once", b"sentinel"], f"QoS 2 message delivered more than once: {got}"


def test_qos2_pubrel_for_unknown_id_is_completed(broker, raw, version):
    r = raw(broker, version)
    r.connect(client_id=unique())
    r.ack(PUBREL, 999)
    comp = r.expect(PUBCOMP)
    assert comp.pid == 999
    if version == V5:  # 0x92 says it best; 0x00 is what a broker that keeps no record may answer
        assert comp.reason in (0x00, 0x92), f"PUBCOMP reason {comp.reason:#04x}"
    r.publish("pubrel/after", b"x", 1)
    assert r.expect(PUBACK).pid is not None, "the connection still works"


@pytest.mark.parametrize("mode", ["v311-max_inflight", "v5-receive_maximum"])
def test_inflight_window_never_exceeded(start_broker, raw, clients, mode):
    """The broker never has more unacknowledged QoS 1 messages out to a client than its window:
    max_inflight for 3.1.1, the client's Receive Maximum (when smaller) for 5.0 [MQTT-3.3.4-9]."""
    if mode.startswith("v311"):
        b = start_broker({"limits": {"max_inflight": 3}})
        version, props = V311, None
    else:
        b = start_broker({"limits": {"max_inflight": 50}})
        version, props = V5, {"ReceiveMaximum": 3}
    r = raw(b, version)
    r.connect(client_id=unique(), props=props)
    r.subscribe([("win/t", 1)])
    pub = clients(b, V311)
    for i in range(10):
        pub.publish("win/t", str(i).encode(), 1)
    first = [r.expect(PUBLISH) for _ in range(3)]
    assert [int(p.payload) for p in first] == [0, 1, 2]
    r.expect_no_packet(QUIET)  # window full: nothing more until an ack
    r.ack(PUBACK, first[0].pid)
    fourth = r.expect(PUBLISH)
    assert int(fourth.payload) == 3
    r.expect_no_packet(QUIET)  # one ack opens exactly one slot
    pending = [first[1], first[2], fourth]
    received = [0, 1, 2, 3]
    while len(received) < 10:
        r.ack(PUBACK, pending.pop(0).pid)
        p = r.expect(PUBLISH)
        received.append(int(p.payload))
        pending.append(p)
    for p in pending:
        r.ack(PUBACK, p.pid)
    assert received == list(range(10)), f"in order, none lost: {received}"


def test_offline_queue_delivered_in_order_on_reconnect(broker, clients, version):
    cid = unique("off")
    sub = clients(broker, version, client_id=cid, **persistent(version))
    sub.subscribe("off/t", 1)
    sub.disconnect()
    pub = clients(broker, version)
    for i in range(10):
        pub.publish("off/t", f"m{i}".encode(), 1)
    sub = clients(broker, version, client_id=cid, **persistent(version))
    assert sub.session_present
    got = sub.expect_n(10)
    assert [m.payload for m in got] == [f"m{i}".encode() for i in range(10)]
    assert all(m.qos == 1 for m in got)


def sys_value(client, topic, timeout=5.0, at_least=None):
    """Waits for $SYS `topic` (an integer) to be published, optionally with value >= at_least."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            m = client.expect(timeout=max(deadline - time.monotonic(), 0.01))
        except AssertionError:
            break
        if m.topic == topic:
            assert re.fullmatch(rb"\d+", m.payload), f"{topic} = {m.payload!r} is not a decimal integer"
            last = int(m.payload)
            if at_least is None or last >= at_least:
                return last
    raise AssertionError(f"{topic}: no value{'' if at_least is None else f' >= {at_least}'} within {timeout}s "
                         f"(last {last})")


def test_offline_queue_bounded_and_drops_counted(start_broker, clients, version):
    b = start_broker({"limits": {"max_queued_messages": 5}, "broker": {"sys_interval": 1}})
    watch = clients(b, V311)
    watch.subscribe("$SYS/broker/messages/dropped", 0)
    before = sys_value(watch, "$SYS/broker/messages/dropped")
    cid = unique("bound")
    sub = clients(b, version, client_id=cid, **persistent(version))
    sub.subscribe("bound/t", 1)
    sub.disconnect()
    pub = clients(b, version)
    for i in range(12):
        pub.publish("bound/t", str(i).encode(), 1)
    sub = clients(b, version, client_id=cid, **persistent(version))
    got = [int(m.payload) for m in sub.expect_n(5)]
    assert got == [0, 1, 2, 3, 4], f"the first 5 are queued, later ones dropped: {got}"
    pub.publish("bound/t", b"sentinel", 1)
    assert sub.expect().payload == b"sentinel", "no more than max_queued_messages were queued"
    sys_value(watch, "$SYS/broker/messages/dropped", at_least=before + 7)


def test_v5_qos_above_maximum_is_refused(start_broker, raw, clients):
    b = start_broker({"limits": {"max_qos": 1}})
    r = raw(b, V5)
    ack = r.connect(client_id=unique())
    assert ack.props.get("MaximumQoS") == 1
    r.publish("maxqos/t", b"x", 2)
    got = r.wait_closed()
    assert got and got[-1].reason == 0x9B, f"QoS 2 above Maximum QoS 1: expected DISCONNECT 0x9B, got {got!r}"
    clients(b, V5).roundtrip()


def test_v5_subscribe_options_byte_qos(broker, raw, clients):
    r = raw(broker, V5)
    r.connect(client_id=unique())
    ack = r.subscribe([("opt/a", sub_options(0)), ("opt/b", sub_options(1)), ("opt/c", sub_options(2))])
    assert ack.codes == [0, 1, 2]
