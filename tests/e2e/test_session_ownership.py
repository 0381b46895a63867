"""A session belongs to the identity that created it (issue 10): another identity presenting the
same client id is refused (5.0 CONNACK 0x85, 3.1.1 0x02) and neither resumes the session (its
subscriptions, its queued messages) nor takes its live connection over. Assigned client ids are
unguessable. The owner itself still resumes and takes over as the specification says.

Identities come from the topics fleet (topics_helpers.py): dashboard tokens ("dash-a", "dash-b":
two identities with the same rights, so that only ownership tells them apart), password users
(thermostats), and client certificates.
"""

import re
import threading

from pahoclient import V311, V5, unique
from pki import pki  # noqa: F401  (a fixture)
from rawclient import PUBACK
from topics_helpers import PASSWORD
from topics_helpers import certs, fleet, jwt_key, make_fleet, users_db  # noqa: F401  (fixtures)

NOT_OWNER = {V5: 0x85, V311: 0x02}


def temperature(building, room):
    return f"buildings/{building}/rooms/{room}/temperature"


def dashboard_raw(fleet, name, version, client_id, clean=True, expect_rc=0):
    """A raw client on the tokens listener, authenticated as dashboard identity `name`."""
    r = fleet._raw("tokens", version)
    props = {"SessionExpiryInterval": 300} if version == V5 and not clean else None
    ack = r.connect(client_id=client_id, clean=clean, props=props, username=name, expect_rc=expect_rc,
                    password=fleet.token(name, roles=["dashboard"]).encode())
    return r, ack


def test_another_identity_neither_resumes_a_session_nor_gets_its_messages(fleet, version):
    client_id = unique("shared")
    owner, _ = dashboard_raw(fleet, "dash-a", version, client_id, clean=False)
    assert owner.subscribe([(temperature("b1", "r1"), 1)]).codes == [1]
    owner.close()  # offline; the session stays
    t = fleet.raw_user("t-b1-r1")
    for i in range(3):
        t.publish(temperature("b1", "r1"), f"queued {i}".encode(), 1)
        assert t.expect(PUBACK).reason == 0

    since = len(fleet.broker.stderr_text())
    thief, ack = dashboard_raw(fleet, "dash-b", version, client_id, clean=False, expect_rc=NOT_OWNER[version])
    assert not ack.session_present
    assert thief.wait_closed() == []
    e = fleet.broker.wait_for_event("auth_denied", since, client_id=client_id, identity="dash-b", method="jwt")
    assert e["reason_code"] == "0x85" and "belongs to another identity" in e["reason"], e
    # A clean start does not discard it either.
    dashboard_raw(fleet, "dash-b", version, client_id, clean=True, expect_rc=NOT_OWNER[version])

    back, ack = dashboard_raw(fleet, "dash-a", version, client_id, clean=False)
    assert ack.session_present, "the owner's session survived"
    got = [back.expect_publish().payload for _ in range(3)]
    assert got == [b"queued 0", b"queued 1", b"queued 2"]


def test_another_identity_cannot_take_over_a_live_connection(fleet, version):
    """t-b1-r2 presents t-b1-r1's live client id: refused; the owner stays connected and its will is
    not published."""
    watch = fleet.dashboard()
    assert watch.subscribe(temperature("b1", "r1"), 1) == [1]
    client_id = unique("live")
    owner = fleet._paho("users", version, client_id, username="t-b1-r1", password=PASSWORD, connect=False)
    owner.c.will_set(temperature("b1", "r1"), b"owner died", 1, False)
    owner.connect()
    thief = fleet._raw("users", version)
    thief.connect(client_id=client_id, username="t-b1-r2", password=PASSWORD.encode(), expect_rc=NOT_OWNER[version])
    assert thief.wait_closed() == []
    owner.publish(temperature("b1", "r1"), b"still here", 1)
    m = watch.expect()
    assert m.payload == b"still here", "the owner is connected, and its will did not fire"
    watch.expect_none()


def test_the_owner_still_takes_over_its_own_session(fleet, version):
    """The same identity on a second connection takes over as the specification says: the first
    one is ended (5.0: DISCONNECT 0x8E) and the session is resumed."""
    client_id = unique("own")
    first, _ = dashboard_raw(fleet, "dash-a", version, client_id, clean=False)
    assert first.subscribe([(temperature("b1", "r1"), 1)]).codes == [1]
    second, ack = dashboard_raw(fleet, "dash-a", version, client_id, clean=False)
    assert ack.session_present
    got = first.wait_closed()
    if version == V5:
        assert [p.reason for p in got] == [0x8E], got
    t = fleet.raw_user("t-b1-r1")
    t.publish(temperature("b1", "r1"), b"to the new connection", 1)
    assert second.expect_publish().payload == b"to the new connection"


def test_certificates_with_any_client_id_cannot_reach_each_others_sessions(make_fleet, version):
    f = make_fleet({"auth": {"certificate": {"client_id": "any"}}})
    client_id = unique("cert")
    a = f._raw("certs", version, f.certs["t-cert-1"])
    a.connect(client_id=client_id, expect_rc=0)
    b = f._raw("certs", version, f.certs["t-cert-2"])
    b.connect(client_id=client_id, expect_rc=NOT_OWNER[version])
    assert b.wait_closed() == []
    assert a.is_open(0.3)


def test_a_squatter_cannot_lock_a_device_out_of_its_client_id(fleet, version):
    """A certificate with client_id = "must_match" fixes the device's client id. Another identity
    that took that client id first (squatting, while the device was away) does not lock the device
    out: the device connects, the squatter's session ends (5.0: DISCONNECT 0x8E) without being
    resumed into the device's, and the squatter cannot come back under that client id."""
    cert = fleet.certs["t-cert-1"]
    squatter, _ = dashboard_raw(fleet, "dash-b", version, cert.cn, clean=False)
    assert squatter.subscribe([(temperature("b1", "r1"), 1)]).codes == [1]
    device = fleet._raw("certs", version, cert)
    props = {"SessionExpiryInterval": 300} if version == V5 else None
    ack = device.connect(client_id=cert.cn, clean=False, props=props, expect_rc=0)
    assert not ack.session_present, "the squatter's session is not the device's"
    got = squatter.wait_closed()
    if version == V5:
        assert [p.reason for p in got] == [0x8E], got
    t = fleet.raw_user("t-b1-r1")
    t.publish(temperature("b1", "r1"), b"not for the device", 1)
    assert t.expect(PUBACK).reason == 0
    device.expect_no_packet(0.5)
    dashboard_raw(fleet, "dash-b", version, cert.cn, clean=False, expect_rc=NOT_OWNER[version])


def test_assigned_client_ids_are_unguessable_and_owned(fleet):
    """5.0 clients that send no client id get one the broker makes: 128 random bits, so the next
    one cannot be worked out from one's own; and another identity presenting it is refused."""
    ids = []
    for _ in range(3):
        r = fleet._raw("users", V5)
        ack = r.connect(client_id="", username="t-b1-r1", password=PASSWORD.encode(), expect_rc=0)
        ids.append(ack.props["AssignedClientIdentifier"])
    for i in ids:
        assert re.fullmatch(r"fh-[0-9a-f]{32}", i), ids
    assert len(set(ids)) == 3
    # Nothing sequential about them: the ids share no long prefix.
    assert len({i[:10] for i in ids}) == 3, ids
    thief = fleet._raw("users", V5)
    thief.connect(client_id=ids[-1], username="t-b1-r2", password=PASSWORD.encode(), expect_rc=0x85)


def test_takeover_races_across_shards_never_hand_a_session_to_another_identity(fleet, version):
    """While its owner reconnects, another identity fires CONNECTs with the same client id from
    many threads at once (the connections land on both shards). Every one of them is refused; the
    owner resumes its session with its queued messages."""
    client_id = unique("race")
    owner, _ = dashboard_raw(fleet, "dash-a", version, client_id, clean=False)
    assert owner.subscribe([(temperature("b1", "r1"), 1)]).codes == [1]
    owner.close()
    t = fleet.raw_user("t-b1-r1")
    t.publish(temperature("b1", "r1"), b"kept for the owner", 1)
    assert t.expect(PUBACK).reason == 0

    results = []
    token = fleet.token("dash-b", roles=["dashboard"]).encode()

    def attack():
        for _ in range(5):
            r = fleet._raw("tokens", version)
            props = {"SessionExpiryInterval": 300} if version == V5 else None
            ack = r.connect(client_id=client_id, clean=False, props=props, username="dash-b", password=token,
                            expect_rc=None)
            results.append((ack.reason, ack.session_present))
            r.close()

    threads = [threading.Thread(target=attack) for _ in range(4)]
    for th in threads:
        th.start()
    back, ack = dashboard_raw(fleet, "dash-a", version, client_id, clean=False)
    for th in threads:
        th.join(timeout=60)
    assert len(results) == 20
    assert all(r == (NOT_OWNER[version], False) for r in results), results
    assert ack.session_present
    m = back.expect_publish()
    assert m.payload == b"kept for the owner"


def test_anonymous_clients_share_one_identity(start_broker, raw):
    """Documented (docs/security.md): anonymous clients are one identity, so one anonymous client
    can take over another's session. Listeners that admit anonymous clients are for clients that
    share no session state worth protecting."""
    b = start_broker()
    first = raw(b, 5)
    first.connect(client_id="anon-1", expect_rc=0)
    second = raw(b, 5)
    second.connect(client_id="anon-1", expect_rc=0)
    assert [p.reason for p in first.wait_closed()] == [0x8E]
