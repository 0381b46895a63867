"""Retained messages (set, replace, delete, delivery to new subscribers) and the 5.0 Message Expiry
Interval (queued and retained messages expire; the remaining interval is passed on)."""

import time

import pytest

from pahoclient import QUIET, V5, V311, unique

SESSION = {"SessionExpiryInterval": 60}


def retained_now(broker, clients, version, topic_filter, sentinel_topic):
    """What a brand-new subscriber to `topic_filter` receives as retained messages.
    `sentinel_topic` must match the filter and hold no retained message; a live message is
    published to it after the SUBACK, and everything before it is the retained set."""
    c = clients(broker, version)
    c.subscribe(topic_filter, 1)
    pub = clients(broker, version)
    pub.publish(sentinel_topic, b"sentinel", 1)
    got = []
    while True:
        m = c.expect()
        if m.payload == b"sentinel" and m.topic == sentinel_topic:
            assert not m.retain, "a live message is delivered with retain 0 to a new subscriber"
            return got
        got.append(m)


def test_retained_set_replace_delete(broker, clients, version):
    pub = clients(broker, version)
    pub.publish("ret/a", b"one", 1, retain=True)
    got = retained_now(broker, clients, version, "ret/a", "ret/a")
    # the sentinel is published to the same topic without retain, so it does not replace "one"
    assert [(m.topic, m.payload, m.retain) for m in got] == [("ret/a", b"one", True)]

    pub.publish("ret/a", b"two", 1, retain=True)
    got = retained_now(broker, clients, version, "ret/a", "ret/a")
    assert [(m.payload, m.retain) for m in got] == [(b"two", True)], "a new retained message replaces the old"

    pub.publish("ret/a", b"", 1, retain=True)  # [MQTT-3.3.1-10]: empty payload deletes
    got = retained_now(broker, clients, version, "ret/a", "ret/a")
    assert got == [], f"retained message not deleted by an empty retained publish: {got}"


def test_retained_delivered_for_wildcard_subscription_at_subscription_qos(broker, clients, version):
    pub = clients(broker, version)
    pub.publish("rw/x/1", b"a", 2, retain=True)
    pub.publish("rw/y/2", b"b", 1, retain=True)
    pub.publish("rw/z", b"c", 0, retain=True)
    pub.publish("other/x/1", b"d", 1, retain=True)
    c = clients(broker, version)
    c.subscribe("rw/+/#", 1)
    got = c.expect_n(3)
    assert sorted((m.topic, m.payload, m.retain, m.qos) for m in got) == [
        ("rw/x/1", b"a", True, 1), ("rw/y/2", b"b", True, 1), ("rw/z", b"c", True, 0)]
    c.expect_none(QUIET)


def test_retained_empty_payload_not_stored_and_qos0_retained_kept(broker, clients, version):
    pub = clients(broker, version)
    pub.publish("rq/t", b"", 0, retain=True)  # deleting what does not exist is fine
    pub.publish("rq/u", b"q0", 0, retain=True)
    pub.publish("rq-flush", b"", 1)  # once this is acknowledged, the QoS 0 publishes were processed
    got = retained_now(broker, clients, version, "rq/#", "rq/sentinel")
    assert [(m.topic, m.payload) for m in got] == [("rq/u", b"q0")]


def test_retain_not_available(start_broker, raw, clients):
    b = start_broker({"limits": {"retain_available": False}})
    c = clients(b, V5)
    assert c.connack_props.get("RetainAvailable") == 0
    r = raw(b, V5)
    r.connect(client_id=unique())
    r.publish("nr/t", b"x", 1, retain=True)
    got = r.wait_closed()
    assert got and got[-1].reason == 0x9A, f"[MQTT-3.3.1-16] expected DISCONNECT 0x9A, got {got!r}"


@pytest.mark.parametrize("sub_version", [V311, V5], ids=["3.1.1-subscriber", "5.0-subscriber"])
def test_queued_message_expires_while_subscriber_offline(broker, clients, sub_version):
    cid = unique("mx")
    kw = {"clean": False, "props": SESSION if sub_version == V5 else None}
    sub = clients(broker, sub_version, client_id=cid, **kw)
    sub.subscribe("mx/t", 1)
    sub.disconnect()
    # DISCONNECT sent is not DISCONNECT handled: until the broker has made the session offline, the
    # messages below could still go out live.
    broker.wait_for_event("client_disconnected", client_id=cid)
    pub = clients(broker, V5)
    pub.publish("mx/t", b"short", 1, props={"MessageExpiryInterval": 1})
    pub.publish("mx/t", b"long", 1, props={"MessageExpiryInterval": 60})
    pub.publish("mx/t", b"forever", 1)
    published = time.monotonic()
    time.sleep(2.2)  # let the 1 s message expire
    sub = clients(broker, sub_version, client_id=cid, **kw)
    assert sub.session_present
    waited = time.monotonic() - published
    got = sub.expect_n(2)
    assert [m.payload for m in got] == [b"long", b"forever"], "the expired message must not be delivered"
    if sub_version == V5:
        remaining = got[0].props.get("MessageExpiryInterval")
        assert remaining is not None, "[MQTT-3.3.2-6] the Message Expiry Interval is passed on"
        assert 60 - waited - 2 <= remaining <= 60 - int(waited), (
            f"remaining interval {remaining} after {waited:.1f}s waiting of 60 s")
        assert "MessageExpiryInterval" not in got[1].props


def test_v5_live_delivery_carries_expiry_interval(broker, clients):
    sub = clients(broker, V5)
    sub.subscribe("mxl/t", 1)
    pub = clients(broker, V5)
    pub.publish("mxl/t", b"x", 1, props={"MessageExpiryInterval": 30})
    m = sub.expect()
    assert 28 <= m.props.get("MessageExpiryInterval", -1) <= 30, m.props


def test_retained_message_expires(broker, clients, version):
    pub = clients(broker, V5)
    pub.publish("rx/t", b"brief", 1, retain=True, props={"MessageExpiryInterval": 1})
    pub.publish("rx/keep", b"kept", 1, retain=True)
    got = retained_now(broker, clients, version, "rx/#", "rx/sentinel")
    assert sorted(m.payload for m in got) == [b"brief", b"kept"], "fresh retained message is there"
    if version == V5:
        brief = next(m for m in got if m.payload == b"brief")
        assert brief.props.get("MessageExpiryInterval", 99) <= 1, brief.props
    time.sleep(2.2)
    got = retained_now(broker, clients, version, "rx/#", "rx/sentinel")
    assert [m.payload for m in got] == [b"kept"], "an expired retained message is no longer delivered"
