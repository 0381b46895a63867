"""Session scenarios under 3.1.1 as well as 5.0 where the existing tests cover only 5.0: the
broker's cap on session lifetime (max_session_expiry), shared subscriptions from 3.1.1 clients
and from a mix of both, and a shared group member's offline session."""

import queue
import time

import pytest

from pahoclient import QUIET, V5, V311, unique

CAP = {"limits": {"max_session_expiry": 2}}


def persistent(version, expiry=3600):
    return {"clean": False, "props": {"SessionExpiryInterval": expiry} if version == V5 else None}


def test_session_lifetime_is_capped_by_max_session_expiry(start_broker, clients, version):
    """3.1.1 clean session 0 ("never expires") and a 5.0 request for an hour both last
    max_session_expiry (2 s) after the connection ends; 5.0 CONNACK says so."""
    b = start_broker(CAP)
    cid = unique("cap")
    c = clients(b, version, client_id=cid, **persistent(version))
    if version == V5:
        assert c.connack_props.get("SessionExpiryInterval") == 2, c.connack_props
    c.subscribe("cap/t", 1)
    c.disconnect()
    time.sleep(0.5)
    c = clients(b, version, client_id=cid, **persistent(version))
    assert c.session_present, "resumed within the cap"
    c.disconnect()
    time.sleep(3.2)
    c = clients(b, version, client_id=cid, **persistent(version))
    assert not c.session_present, "the session outlived max_session_expiry"


def test_v311_offline_session_keeps_messages_until_it_expires(start_broker, clients):
    b = start_broker(CAP)
    cid = unique("cap")
    c = clients(b, V311, client_id=cid, **persistent(V311))
    c.subscribe("capq/t", 1)
    c.disconnect()
    pub = clients(b, V311)
    pub.publish("capq/t", b"kept", 1)
    c = clients(b, V311, client_id=cid, **persistent(V311))
    assert c.expect().payload == b"kept"


@pytest.mark.parametrize("versions", [(V311, V311), (V311, V5)], ids=["3.1.1", "3.1.1+5.0"])
def test_shared_subscription_spreads_messages_across_versions(broker, clients, versions):
    inbox = queue.Queue()
    members = [clients(broker, v, messages=inbox) for v in versions]
    for m in members:
        assert m.subscribe("$share/mix/work/+", 1) == [1]
    pub = clients(broker, V311)
    for i in range(20):
        pub.publish(f"work/{i % 4}", str(i).encode(), 1)
    got = {m.client_id: [] for m in members}
    for _ in range(20):
        try:
            msg = inbox.get(timeout=5.0)
        except queue.Empty:
            pytest.fail(f"the group got only {sum(map(len, got.values()))} of 20: {got}")
        got[msg.receiver].append(int(msg.payload))
    with pytest.raises(queue.Empty):
        extra = inbox.get(timeout=QUIET)
        pytest.fail(f"a 21st message: {extra!r}")
    assert sorted(x for part in got.values() for x in part) == list(range(20)), got
    assert all(got.values()), f"every member gets a share: {got}"


def test_shared_group_prefers_connected_members(broker, clients, version):
    """A member with an offline persistent session keeps its subscription, but the group delivers
    to the connected member while it is away."""
    cid = unique("away")
    away = clients(broker, version, client_id=cid, **persistent(version))
    away.subscribe("$share/pref/p/t", 1)
    here = clients(broker, version)
    here.subscribe("$share/pref/p/t", 1)
    away.disconnect()
    pub = clients(broker, version)
    for i in range(6):
        pub.publish("p/t", str(i).encode(), 1)
    assert sorted(int(m.payload) for m in here.expect_n(6)) == list(range(6))
