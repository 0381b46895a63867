"""Flow control (issue 12): a QoS 1/2 message for a connected subscriber is never dropped for
load. A subscriber over its queue bounds slows the publishers that feed it (their acknowledgements
wait, then their input), not anybody else; one that acknowledges nothing for
limits.slow_subscriber_timeout is disconnected (5.0: 0x97) and keeps its queue, within its bounds,
as an offline session (docs/broker.md, "Flow control")."""

import time

import pytest

from pahoclient import V5, V311, unique
from rawclient import DISCONNECT, PUBACK, PUBLISH

SMALL = {"limits": {"max_inflight": 5, "max_queued_messages": 10, "slow_subscriber_timeout": 30}}
SESSION = {"SessionExpiryInterval": 600}


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def settled(count, quiet=1.0, timeout=15):
    """`count()` once it has not changed for `quiet` seconds."""
    last, since = count(), time.monotonic()
    deadline = since + timeout
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, f"still changing after {timeout}s: {last}"
        time.sleep(0.05)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
    return last


def collect(sub, until_count, timeout, ack):
    """PUBLISH packets read from raw client `sub` until it has `until_count`, acknowledging each if `ack`."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < until_count:
        p = sub.recv_or_none(max(0.0, deadline - time.monotonic()))
        assert p is not None, f"only {len(got)} of {until_count} messages arrived"
        if p.type == PUBLISH:
            got.append(p)
            if ack:
                sub.ack(PUBACK, p.pid)
    return got


def test_a_slow_subscriber_slows_its_publisher_and_loses_nothing(start_broker, raw, clients, version):
    b = start_broker(SMALL)
    sub = raw(b, version)
    sub.connect(client_id=unique("slow"))  # clean: nothing is kept for it, nothing needs to be
    sub.subscribe([("bp/t", 1)])
    other_sub = clients(b, version)
    other_sub.subscribe("other/t", 1)
    other_pub = clients(b, version)
    pub = clients(b, version)

    # The subscriber reads but acknowledges nothing: 5 in flight and 10 queued, then it is over its
    # bounds, and the publisher's acknowledgements stop coming.
    mids = [pub.publish("bp/t", str(i).encode(), qos=1, wait=False) for i in range(60)]
    early = collect(sub, 5, 5, ack=False)
    slowed = settled(lambda: pub.acknowledged(mids))
    assert slowed < 60, "every publish was acknowledged although its subscriber could not keep up"

    # Another publisher and subscriber go on meanwhile.
    other_pub.publish("other/t", b"unaffected", qos=1, timeout=5)
    assert other_sub.expect(timeout=5).payload == b"unaffected"

    # The subscriber catches up: every message arrives once, in order, and is acknowledged.
    for p in early:
        sub.ack(PUBACK, p.pid)
    rest = collect(sub, 55, 20, ack=True)
    assert [p.payload for p in early + rest] == [str(i).encode() for i in range(60)]
    wait_until(lambda: pub.acknowledged(mids) == 60, 10, "the publisher was not released")
    assert not b.events("message_dropped"), "nothing may be dropped"


def test_a_subscriber_that_stops_acknowledging_is_disconnected_and_keeps_its_queue(start_broker, raw, clients,
                                                                                   version):
    b = start_broker({"limits": {"max_inflight": 5, "max_queued_messages": 10, "slow_subscriber_timeout": 2}})
    cid = unique("stuck")
    sub = raw(b, version)
    sub.connect(client_id=cid, clean=False, props=SESSION if version == V5 else None)
    sub.subscribe([("stuck/t", 1)])
    pub = clients(b, version)
    mids = [pub.publish("stuck/t", str(i).encode(), qos=1, wait=False) for i in range(40)]

    # About 2 s after it went over its bounds without acknowledging anything, it is disconnected.
    got = sub.wait_closed(timeout=10)
    if version == V5:
        assert got[-1].type == DISCONNECT and got[-1].reason == 0x97, got[-1:]
    event = b.wait_for_event("client_disconnected", client_id=cid)
    assert event["initiator"] == "server" and "slow_subscriber_timeout" in event["reason"], event

    # The publisher is released, and its offline queue keeps what fits (5 in flight, 10 queued,
    # the newest given up and counted).
    wait_until(lambda: pub.acknowledged(mids) == 40, 10, "the publisher was not released")
    def dropped():  # from the audit log: the log folds repeated events for a while
        return sum(e["count"] for e in b.audit_records("message_dropped", client_id=cid))
    wait_until(lambda: dropped() >= 25, 5, "the messages given up are reported")
    assert dropped() == 25
    back = raw(b, version)
    back.connect(client_id=cid, clean=False, props=SESSION if version == V5 else None)
    again = collect(back, 15, 10, ack=True)
    assert [p.payload for p in again] == [str(i).encode() for i in range(15)]
