"""Subscriptions: wildcards, $SYS, overlapping and shared subscriptions, the 5.0 subscription
options (No Local, Retain As Published, Retain Handling) and UNSUBSCRIBE.

Where a test must show that something was NOT delivered, it publishes a sentinel afterwards from the
same publisher at the same QoS (the spec orders messages per topic and QoS only, but a broker keeps
one publisher's order at one QoS to one subscriber), and checks what arrived before the sentinel.
Where the QoS may differ, it watches for QUIET seconds instead."""

import queue

import pytest

from pahoclient import QUIET, V5, V311, Client, unique
from rawclient import DISCONNECT, sub_options, subscribe_packet


def until_sentinel(client, sentinel=b"sentinel", timeout=5.0):
    """Messages received up to (not including) the one whose payload is `sentinel`."""
    got = []
    while True:
        m = client.expect(timeout)
        if m.payload == sentinel:
            return got
        got.append(m)


def test_single_and_multi_level_wildcards(broker, clients, version):
    sub = clients(broker, version)
    # no topic below matches two of these filters (5.0 may deliver one copy per match)
    assert sub.subscribe([("w/+/x", 1), ("h/#", 1), ("+/p", 1)]) == [1, 1, 1]
    pub = clients(broker, version)
    topics = {
        "w/a/x": True,
        "w//x": True,         # an empty level matches +
        "w/a/b/x": False,
        "w/x": False,
        "w/a/x/y": False,
        "h": True,            # "h/#" matches its parent level too [MQTT-4.7.1-2]
        "h/a": True,
        "h/a/b/c": True,
        "hh/a": False,
        "top/p": True,
        "/p": True,           # levels "" and "p"
        "p": False,
        "top/p/q": False,
    }
    for t in topics:
        pub.publish(t, t.encode(), 1)
    pub.publish("h/end", b"sentinel", 1)
    got = [m.topic for m in until_sentinel(sub)]
    expected = [t for t, match in topics.items() if match]
    assert sorted(got) == sorted(expected), f"delivered {got}, expected {expected}"
    assert len(got) == len(set(got)), f"a message delivered twice: {got}"


def test_invalid_topic_filters_are_not_granted(broker, clients, raw, version):
    for bad in ("a/#/b", "a/b#", "a+/b", "#/a"):
        r = raw(broker, version)
        r.connect(client_id=unique())
        r.send(subscribe_packet(version, 1, [(bad, 1)]))
        got = []
        try:
            got.append(r.recv())
        except AssertionError:
            pass  # the broker closed the connection: also a refusal
        if got and got[0].codes is not None:
            assert got[0].codes[0] >= 0x80, f"invalid filter {bad!r} was granted: {got[0]!r}"
        elif got:
            assert got[0].type == DISCONNECT and got[0].reason in (0x81, 0x82, 0x8F), got
    clients(broker, version).roundtrip()


def test_sys_topics_not_matched_by_leading_wildcards(start_broker, clients, version):
    """[MQTT-4.7.2-1]: filters starting with a wildcard do not match topics starting with $."""
    b = start_broker({"broker": {"sys_interval": 1}})
    sys_sub = clients(b, version)
    all_sub = clients(b, version)
    all_sub.subscribe([("#", 0), ("+/broker/#", 0), ("+/+/uptime", 0)])
    sys_sub.subscribe("$SYS/#", 0)
    # $SYS messages exist: wait for one that is published after both subscriptions (not retained)
    while True:
        m = sys_sub.expect(timeout=5.0)
        if m.topic.startswith("$SYS/") and not m.retain:
            break
    pub = clients(b, version)
    pub.publish("plain/topic", b"sentinel", 1)
    seen = until_sentinel(all_sub)
    dollar = [m.topic for m in seen if m.topic.startswith("$")]
    assert not dollar, f"'#' / '+/...' matched $ topics: {dollar}"


def test_v5_overlapping_subscriptions_carry_subscription_identifiers(broker, clients):
    sub = clients(broker, V5)
    assert sub.connack_props.get("SubscriptionIdentifierAvailable", 1) == 1
    sub.subscribe("ov/+", 1, sub_id=1)
    sub.subscribe("ov/#", 2, sub_id=2)
    pub = clients(broker, V5)
    pub.publish("ov/a", b"both", 2)
    # either one copy with both identifiers at QoS 2, or one copy per subscription [MQTT-3.3.4-3..5]
    got = [sub.expect()]
    ids = list(got[0].props.get("SubscriptionIdentifier", []))
    if sorted(ids) != [1, 2]:
        got.append(sub.expect())
        ids += got[1].props.get("SubscriptionIdentifier", [])
    sub.expect_none(QUIET)
    assert sorted(ids) == [1, 2], f"subscription identifiers over the deliveries: {[(m.qos, m.props) for m in got]}"
    if len(got) == 1:
        assert got[0].qos == 2, "one delivery for both subscriptions must have the higher QoS"
    else:
        by_id = {m.props["SubscriptionIdentifier"][0]: m.qos for m in got}
        assert by_id == {1: 1, 2: 2}, f"each copy at its subscription's QoS: {by_id}"


def test_v5_subscription_identifier_largest_value_and_absent(broker, clients):
    sub = clients(broker, V5)
    sub.subscribe("sid/t", 1, sub_id=268435455)  # the largest Variable Byte Integer
    sub.subscribe("sid/plain", 1)
    pub = clients(broker, V5)
    pub.publish("sid/t", b"a", 1)
    pub.publish("sid/plain", b"b", 1)
    a, b = sub.expect_n(2)
    assert a.props.get("SubscriptionIdentifier") == [268435455], a.props
    assert "SubscriptionIdentifier" not in b.props, f"no identifier for a subscription without one: {b.props}"


def test_v311_overlapping_subscriptions_one_delivery_at_highest_qos(broker, clients):
    sub = clients(broker, V311)
    assert sub.subscribe([("ov/+", 0), ("ov/#", 2), ("ov/a", 1), ("ov-end", 0)]) == [0, 2, 1, 0]
    pub = clients(broker, V311)
    pub.publish("ov/a", b"once", 2)
    got = [sub.expect()] + sub.expect_within(QUIET)
    assert [(m.payload, m.qos) for m in got] == [(b"once", 2)], (
        f"3.1.1: one delivery at the highest QoS of the matching subscriptions, got {[(m.payload, m.qos) for m in got]}")


def test_v5_shared_subscription_spreads_messages(broker, clients):
    inbox = queue.Queue()  # both members deliver here, each message tagged with its receiver
    members = [clients(broker, V5, messages=inbox) for _ in range(2)]
    for m in members:
        assert m.connack_props.get("SharedSubscriptionAvailable", 1) == 1
        assert m.subscribe("$share/grp/jobs/+", 1) == [1]
    plain = clients(broker, V5)
    plain.subscribe("jobs/+", 1)
    pub = clients(broker, V5)
    for i in range(20):
        pub.publish(f"jobs/{i % 3}", str(i).encode(), 1)
    everything = plain.expect_n(20)
    assert sorted(int(m.payload) for m in everything) == list(range(20)), "a normal subscriber gets all 20"
    got = {m.client_id: [] for m in members}
    for _ in range(20):
        try:
            msg = inbox.get(timeout=5.0)
        except queue.Empty:
            pytest.fail(f"shared group got only {sum(map(len, got.values()))} of 20 messages: {got}")
        got[msg.receiver].append(int(msg.payload))
    with pytest.raises(queue.Empty):
        extra = inbox.get(timeout=QUIET)
        pytest.fail(f"shared group got a 21st message: {extra!r}")
    everyone = sorted(x for part in got.values() for x in part)
    assert everyone == list(range(20)), f"each message exactly once in the group: {got}"
    assert all(got.values()), f"both members should get some of the 20: {got}"


def test_v5_shared_subscription_with_single_member_after_other_leaves(broker, clients):
    a = clients(broker, V5)
    b = clients(broker, V5)
    a.subscribe("$share/g2/s/t", 1)
    b.subscribe("$share/g2/s/t", 1)
    b.disconnect()
    pub = clients(broker, V5)
    for i in range(5):
        pub.publish("s/t", str(i).encode(), 1)
    assert [int(m.payload) for m in a.expect_n(5)] == list(range(5)), "the remaining member gets every message"


def test_v5_no_local(broker, clients):
    me = clients(broker, V5)
    other = clients(broker, V5)
    me.subscribe("nl/t", 1, no_local=True)
    other.subscribe("nl/t", 1)
    me.publish("nl/t", b"mine", 1)
    assert other.expect().payload == b"mine"
    other.publish("nl/t", b"theirs", 1)
    assert me.expect().payload == b"theirs", "No Local: a client's own message must not come back"
    assert other.expect().payload == b"theirs"  # other has no No Local


@pytest.mark.parametrize("sub_version,rap,expect_retain", [
    (V311, False, False),   # [MQTT-3.3.1-9]
    (V5, False, False),     # [MQTT-3.3.1-12]
    (V5, True, True),       # [MQTT-3.3.1-13]
], ids=["3.1.1", "5.0-rap0", "5.0-rap1"])
def test_retain_flag_on_live_delivery(broker, clients, sub_version, rap, expect_retain):
    sub = clients(broker, sub_version)
    sub.subscribe("rap/t", 1, retain_as_published=rap)
    pub = clients(broker, V5)
    pub.publish("rap/t", b"live-retained", 1, retain=True)
    pub.publish("rap/t", b"live-plain", 1, retain=False)
    a, b = sub.expect_n(2)
    assert (a.payload, a.retain) == (b"live-retained", expect_retain)
    assert (b.payload, b.retain) == (b"live-plain", False)
    pub.publish("rap/t", b"", 0, retain=True)  # leave no retained message behind


def test_v5_retain_handling(broker, clients):
    pub = clients(broker, V5)
    pub.publish("rh/t", b"kept", 1, retain=True)

    def retained_on_subscribe(client, rh):
        client.subscribe("rh/t", 1, retain_handling=rh)
        pub.publish("rh/t", b"sentinel", 1)  # not retained
        return [m.payload for m in until_sentinel(client)]

    c0 = clients(broker, V5)
    assert retained_on_subscribe(c0, 0) == [b"kept"], "Retain Handling 0: retained sent at subscribe"
    assert retained_on_subscribe(c0, 0) == [b"kept"], "Retain Handling 0: sent again when re-subscribing"

    c1 = clients(broker, V5)
    assert retained_on_subscribe(c1, 1) == [b"kept"], "Retain Handling 1: sent for a new subscription"
    assert retained_on_subscribe(c1, 1) == [], "Retain Handling 1: not sent when the subscription existed"

    c2 = clients(broker, V5)
    assert retained_on_subscribe(c2, 2) == [], "Retain Handling 2: never sent at subscribe"


def test_v5_retain_handling_raw_flags(broker, raw):
    """The same through a raw SUBSCRIBE, so the options byte is exactly what the spec says."""
    r = raw(broker, V5)
    r.connect(client_id=unique())
    p = Client(broker, V5)
    p.connect()
    try:
        p.publish("rhr/t", b"kept", 1, retain=True)
        ack = r.subscribe([("rhr/t", sub_options(qos=1, retain_handling=2))])
        assert ack.codes == [1]
        p.publish("rhr/t", b"live", 1)
        m = r.expect_publish()
        assert m.payload == b"live", f"Retain Handling 2 must not send the retained message first: {m!r}"
        p.publish("rhr/t", b"", 1, retain=True)
    finally:
        p.close()


def test_unsubscribe(broker, clients, version):
    sub = clients(broker, version)
    sub.subscribe([("u/a", 1), ("u/end", 1)])
    codes = sub.unsubscribe(["u/a", "u/never"])
    if version == V5:
        assert codes == [0x00, 0x11], f"UNSUBACK reason codes {codes}, expected [0x00, 0x11 no subscription existed]"
    pub = clients(broker, version)
    pub.publish("u/a", b"after", 1)
    pub.publish("u/end", b"sentinel", 1)
    assert until_sentinel(sub) == [], "no delivery after UNSUBSCRIBE"


def test_subscribe_replaces_existing_subscription_qos(broker, clients, version):
    """[MQTT-3.8.4-3]: a second SUBSCRIBE with the same filter replaces the first (one delivery)."""
    sub = clients(broker, version)
    sub.subscribe("rep/t", 0)
    sub.subscribe("rep/t", 2)
    pub = clients(broker, version)
    pub.publish("rep/t", b"x", 2)
    m = sub.expect()
    assert (m.payload, m.qos) == (b"x", 2), f"the replacing subscription's QoS 2 applies: {m!r}"
    sub.expect_none(QUIET)  # one subscription, one delivery
