"""$SYS/broker/... statistics topics: which exist, that their values follow what clients do, and
that clients cannot publish into the tree."""

import re
import time

from pahoclient import V5, V311, unique
from rawclient import PUBACK

INTERVAL = {"broker": {"sys_interval": 1}}
INTEGER_TOPICS = [
    "$SYS/broker/uptime",
    "$SYS/broker/clients/connected",
    "$SYS/broker/subscriptions/count",
    "$SYS/broker/messages/received",
    "$SYS/broker/messages/sent",
    "$SYS/broker/bytes/received",
    "$SYS/broker/bytes/sent",
    "$SYS/broker/messages/dropped",
]


def latest(client, topics, timeout=5.0, until=None, fresh=False):
    """Reads $SYS messages until every topic of `topics` was seen (and `until(values)` holds);
    returns {topic: payload} with the latest payload of each. `fresh`: ignore retained copies,
    which may predate what the test did before subscribing."""
    deadline = time.monotonic() + timeout
    values = {}
    while time.monotonic() < deadline:
        try:
            m = client.expect(timeout=max(deadline - time.monotonic(), 0.01))
        except AssertionError:
            break
        if fresh and m.retain:
            continue
        values[m.topic] = m.payload
        if set(topics) <= set(values) and (until is None or until(values)):
            return values
    raise AssertionError(f"$SYS within {timeout}s: missing {sorted(set(topics) - set(values))} "
                         f"or condition unmet; got {values}")


def number(payload):
    m = re.match(rb"(\d+)", payload)
    assert m, f"{payload!r} does not start with a decimal number"
    return int(m.group(1))


def test_sys_topics_exist_and_are_retained(start_broker, clients, version):
    b = start_broker(INTERVAL)
    first = clients(b, version)
    first.subscribe("$SYS/broker/#", 0)
    latest(first, INTEGER_TOPICS + ["$SYS/broker/version"], timeout=4)
    # A late subscriber gets the retained values at once, without waiting for the next interval.
    late = clients(b, version)
    late.subscribe("$SYS/broker/#", 0)
    got = latest(late, INTEGER_TOPICS + ["$SYS/broker/version"], timeout=0.8)
    assert got["$SYS/broker/version"].startswith(b"firehook "), got["$SYS/broker/version"]
    for topic in INTEGER_TOPICS:
        number(got[topic])


def test_sys_values_follow_traffic(start_broker, clients, version):
    b = start_broker(INTERVAL)
    watch = clients(b, V311)
    watch.subscribe("$SYS/broker/#", 0)
    before = {t: number(v) for t, v in latest(watch, INTEGER_TOPICS, timeout=4, fresh=True).items()
              if t in INTEGER_TOPICS}

    subs = [clients(b, version) for _ in range(3)]
    for i, s in enumerate(subs):
        s.subscribe(f"sysv/{i}", 1)
    pub = clients(b, version)
    payload = b"x" * 1000
    for i in range(3):
        for _ in range(4):
            pub.publish(f"sysv/{i}", payload, 1)
    for s in subs:
        s.expect_n(4)

    def grown(values):
        now = {t: number(v) for t, v in values.items() if t in INTEGER_TOPICS}
        return (now.get("$SYS/broker/clients/connected", 0) >= before["$SYS/broker/clients/connected"] + 4
                and now.get("$SYS/broker/subscriptions/count", 0) >= before["$SYS/broker/subscriptions/count"] + 3
                and now.get("$SYS/broker/messages/received", 0) >= before["$SYS/broker/messages/received"] + 12
                and now.get("$SYS/broker/messages/sent", 0) >= before["$SYS/broker/messages/sent"] + 12
                and now.get("$SYS/broker/bytes/received", 0) >= before["$SYS/broker/bytes/received"] + 12000
                and now.get("$SYS/broker/bytes/sent", 0) >= before["$SYS/broker/bytes/sent"] + 12000)

    latest(watch, INTEGER_TOPICS, timeout=5, until=grown)

    # Clients that leave are no longer counted.
    connected = None
    for s in subs:
        s.disconnect()
    pub.disconnect()

    def shrunk(values):
        nonlocal connected
        connected = number(values.get("$SYS/broker/clients/connected", b"999"))
        return connected <= before["$SYS/broker/clients/connected"]

    latest(watch, ["$SYS/broker/clients/connected"], timeout=5, until=shrunk)


def test_sys_uptime_advances(start_broker, clients):
    b = start_broker(INTERVAL)
    watch = clients(b, V5)
    watch.subscribe("$SYS/broker/uptime", 0)
    first = number(watch.expect(4).payload)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = watch.expect(4)
        if number(m.payload) >= first + 2:
            return
    raise AssertionError("$SYS/broker/uptime did not advance by 2 s within 5 s")


def test_clients_cannot_publish_to_sys(start_broker, clients, version):
    b = start_broker(INTERVAL)
    watch = clients(b, V311)
    watch.subscribe("$SYS/broker/version", 0)
    assert watch.expect(4).payload.startswith(b"firehook ")
    pub = clients(b, version)
    pub.publish("$SYS/broker/version", b"forged", 1)
    # Wait past the next interval: only the broker's own value may appear.
    for m in watch.expect_within(1.5):
        assert m.payload != b"forged", "a client's PUBLISH reached $SYS/broker/version"
    late = clients(b, version)
    late.subscribe("$SYS/broker/version", 0)
    assert late.expect(2).payload.startswith(b"firehook "), "the retained $SYS value was replaced"


DROP_TOPICS = ["$SYS/broker/messages/dropped", "$SYS/broker/messages/dropped/queue_full",
               "$SYS/broker/messages/dropped/too_large", "$SYS/broker/messages/expired"]


def test_drops_are_counted_by_reason(start_broker, clients):
    """Each reason has its counter: over a session's bounds, over the client's Maximum Packet Size,
    and (not a drop) a Message Expiry Interval that passed while the message waited."""
    b = start_broker({"limits": {"max_queued_messages": 2}, "broker": {"sys_interval": 1}})
    small = clients(b, V5, props={"MaximumPacketSize": 200})
    small.subscribe("why/big", 1)
    cid = unique("why")
    session = {"clean": False, "props": {"SessionExpiryInterval": 60}}
    sub = clients(b, V5, client_id=cid, **session)
    sub.subscribe("why/q", 1)
    sub.disconnect()
    b.wait_for_event("client_disconnected", client_id=cid)
    pub = clients(b, V5)
    pub.publish("why/big", b"L" * 500, 1)  # too large for `small`: 1
    pub.publish("why/q", b"brief", 1, props={"MessageExpiryInterval": 1})
    for i in range(3):  # the queue holds 2: "brief" and "0"; "1" and "2" are dropped
        pub.publish("why/q", str(i).encode(), 1)
    time.sleep(1.5)  # "brief" expires while it waits
    sub = clients(b, V5, client_id=cid, **session)
    assert [m.payload for m in sub.expect_n(1)] == [b"0"]
    watch = clients(b, V311)
    for topic in DROP_TOPICS:
        watch.subscribe(topic, 0)
    want = {"$SYS/broker/messages/dropped": 3, "$SYS/broker/messages/dropped/queue_full": 2,
            "$SYS/broker/messages/dropped/too_large": 1, "$SYS/broker/messages/expired": 1}
    got = latest(watch, DROP_TOPICS, timeout=4, until=lambda v: {t: number(v[t]) for t in v} == want)
    assert {t: number(v) for t, v in got.items()} == want


def test_drops_are_counted_and_logged(start_broker, clients, version):
    """Past the per-session bound a delivery is dropped, never silently: $SYS counts it and the
    broker logs a line (docs/broker.md)."""
    b = start_broker({"limits": {"max_queued_messages": 2}, "broker": {"sys_interval": 1}})
    cid = unique("drop")
    extra = {"props": {"SessionExpiryInterval": 60}} if version == V5 else {}
    sub = clients(b, version, client_id=cid, clean=False, **extra)
    sub.subscribe("drop/t", 1)
    sub.disconnect()
    pub = clients(b, version)
    for i in range(5):
        pub.publish("drop/t", str(i).encode(), 1)
    watch = clients(b, V311)
    watch.subscribe("$SYS/broker/messages/dropped", 0)
    latest(watch, ["$SYS/broker/messages/dropped"], timeout=4,
           until=lambda v: number(v["$SYS/broker/messages/dropped"]) >= 3)
    # message_dropped events carry the count; identical ones within 10 s are written once and then
    # summed in one more line (docs/events.md).
    deadline = time.monotonic() + 12
    logged = 0
    while time.monotonic() < deadline:
        logged = sum(e["count"] for e in b.events("message_dropped", client_id=cid))
        if logged >= 3:
            break
        time.sleep(0.2)
    assert logged == 3, f"{logged} drops logged, expected 3:\n" + b.stderr_text()[-2000:]


def test_queued_and_in_flight_messages_are_counted(start_broker, clients, raw):
    """$SYS/broker/messages/queued and /inflight: messages waiting for an offline persistent session,
    then in flight to it once it is back and does not acknowledge them, then none."""
    b = start_broker({"broker": {"sys_interval": 1}})
    queued, inflight = "$SYS/broker/messages/queued", "$SYS/broker/messages/inflight"
    cid = unique("held")
    sub = clients(b, V5, client_id=cid, clean=False, props={"SessionExpiryInterval": 60})
    sub.subscribe("held/t", 1)
    sub.disconnect()
    pub = clients(b, V5)
    for i in range(4):
        pub.publish("held/t", str(i).encode(), 1)
    watch = clients(b, V311)
    watch.subscribe("$SYS/broker/messages/#", 0)
    latest(watch, [queued, inflight], timeout=6, fresh=True,
           until=lambda v: (number(v[queued]), number(v[inflight])) == (4, 0))
    back = raw(b, V5)
    back.connect(client_id=cid, clean=False, props={"SessionExpiryInterval": 60})
    held = [back.expect_publish(ack=False) for _ in range(4)]  # delivered, not acknowledged
    latest(watch, [queued, inflight], timeout=6, fresh=True,
           until=lambda v: (number(v[queued]), number(v[inflight])) == (0, 4))
    for p in held:
        back.ack(PUBACK, p.pid)
    latest(watch, [queued, inflight], timeout=6, fresh=True,
           until=lambda v: (number(v[queued]), number(v[inflight])) == (0, 0))


AUTHZ_TOPICS = [
    "$SYS/broker/authorization/publishes_denied",
    "$SYS/broker/authorization/subscribes_denied",
    "$SYS/broker/authorization/deliveries_withheld",
    "$SYS/broker/authorization/subscriptions_revoked",
]


def test_authorization_refusals_are_counted(start_broker, clients, tmp_path):
    """With a topics file, refused PUBLISH packets and SUBSCRIBE filters show in $SYS."""
    topics = tmp_path / "topics.toml"
    topics.write_text('[anonymous]\nrole = "guest"\n\n[roles.guest]\ndescription = "anyone"\n\n'
                      '[[topic]]\npattern = "open/#"\ndescription = "open"\npublish = ["guest"]\nsubscribe = ["guest"]\n\n'
                      '[[topic]]\npattern = "$SYS/broker/#"\ndescription = "statistics"\nsubscribe = ["guest"]\n')
    b = start_broker({"topics": str(topics), "broker": {"sys_interval": 1}})
    c = clients(b, V5)
    assert c.subscribe("$SYS/broker/authorization/#", 0) == [0]
    start = {t: number(v) for t, v in latest(c, AUTHZ_TOPICS, timeout=4).items()}
    assert c.subscribe("closed/#", 0) == [0x87]
    c.publish("closed/x", b"no", 1)  # PUBACK 0x87 (paho does not show it; test_topics.py checks it)
    denied, refused = AUTHZ_TOPICS[0], AUTHZ_TOPICS[1]
    got = latest(c, AUTHZ_TOPICS, timeout=5, fresh=True,
                 until=lambda v: number(v.get(denied, b"0")) > start[denied]
                 and number(v.get(refused, b"0")) > start[refused])
    assert number(got[denied]) == start[denied] + 1
    assert number(got[refused]) == start[refused] + 1
