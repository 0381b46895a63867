"""Every way a message enters or leaves the broker is checked against the topics file, not only a
PUBLISH (issue 10): a client's will, at CONNECT and again when it is published; messages that were
queued or in flight for a subscriber when a reload took its right away; and the {client_id}
placeholder, which binds only a client id the identity is entitled to.

The broker is the topics fleet of test_topics.py (topics_helpers.py): TLS listeners for client
certificates (client id = CN), credential-store users and tokens.
"""

import signal
import subprocess

import pytest

from pahoclient import V311, V5, unique
from pki import pki  # noqa: F401  (a fixture)
from rawclient import PUBACK, PUBLISH, Will
from topics_helpers import PASSWORD, replace_file, topics_toml
from topics_helpers import certs, fleet, jwt_key, make_fleet, users_db  # noqa: F401  (fixtures)

CONNACK_NOT_AUTHORIZED = {V5: 0x87, V311: 0x05}


def temperature(building, room):
    return f"buildings/{building}/rooms/{room}/temperature"


def reload_topics(fleet, text):
    """Replaces the topics file, sends SIGHUP and waits until the broker says the new one is in force."""
    since = len(fleet.broker.stderr_text())
    replace_file(fleet.broker.topics_path, text)
    fleet.broker.send_signal(signal.SIGHUP)
    fleet.broker.wait_for_event("reload", since, decision="allow",
                                predicate=lambda e: e["subject"].startswith("topics file"))


def raw_user_with_will(fleet, name, version, will, expect_rc):
    r = fleet._raw("users", version)
    ack = r.connect(client_id=unique(name[:8]), username=name, password=PASSWORD.encode(), will=will,
                    expect_rc=expect_rc)
    return r, ack


def raw_dashboard_with_will(fleet, version, will, expect_rc):
    r = fleet._raw("tokens", version)
    ack = r.connect(client_id=unique("dash"), username="dashboard", will=will, expect_rc=expect_rc,
                    password=fleet.token("dashboard", roles=["dashboard"]).encode())
    return r, ack


# ----------------------------------------------------------------------------------------------
# Wills


@pytest.mark.parametrize("case", ["other-building", "qos-above-max", "retain-where-not-allowed", "denied-area"])
def test_will_the_client_may_not_publish_refuses_the_connect(fleet, version, case):
    """A thermostat (b1/r1) may publish its room's temperature at QoS <= 1, retained; the dashboard
    may publish lobby announcements at QoS 0, not retained, and nothing under internal/. A will the
    client could not publish as a PUBLISH refuses the CONNECT: 5.0 CONNACK 0x87, 3.1.1 0x05, and the
    log says why. Nothing reaches a subscriber, and nothing is retained."""
    who, will, why = {
        "other-building": ("t-b1-r1", Will(temperature("b2", "r1"), b"forged", 1, True), "no grant"),
        "qos-above-max": ("t-b1-r1", Will(temperature("b1", "r1"), b"forged", 2, False), "max_qos"),
        "retain-where-not-allowed": ("dashboard", Will("lobby/announcements", b"forged", 0, True), "retain"),
        "denied-area": ("dashboard", Will("internal/keys/rotation", b"forged", 0, False), "denied"),
    }[case]
    watch = fleet.dashboard()
    assert watch.subscribe("#", 2) == [2]
    keys = fleet.with_token("keys", service="key-rotation")
    assert keys.subscribe("internal/keys/rotation", 1) == [1]
    since = len(fleet.broker.stderr_text())
    if who == "dashboard":
        r, _ = raw_dashboard_with_will(fleet, version, will, CONNACK_NOT_AUTHORIZED[version])
    else:
        r, _ = raw_user_with_will(fleet, who, version, will, CONNACK_NOT_AUTHORIZED[version])
    assert r.wait_closed() == []
    e = fleet.broker.wait_for_event("auth_denied", since, topic=will.topic, identity=who)
    assert e["reason_code"] == "0x87" and why in e["reason"], e
    assert (e["qos"], e["retain"]) == (will.qos, will.retain), e
    if case != "other-building":
        assert "topics.toml:" in e["rule"], e
    watch.expect_none()
    keys.expect_none()
    late = fleet.dashboard()
    assert late.subscribe("#", 1) == [1]
    late.expect_none()


def test_will_refused_with_mosquitto_sub(fleet):
    """The same with a client nobody here wrote: mosquitto_sub with a forged will cannot connect."""
    host, port = fleet.broker.listeners["users"]
    r = subprocess.run(["mosquitto_sub", "-h", "localhost", "-p", str(port), "--cafile", str(fleet.pki.ca),
                        "-u", "t-b1-r1", "-P", PASSWORD, "-i", unique("msub"), "-t", temperature("b1", "r1"),
                        "--will-topic", temperature("b2", "r9"), "--will-payload", "forged", "--will-retain",
                        "-C", "1", "-W", "5"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "not authori" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    late = fleet.dashboard()
    assert late.subscribe(temperature("b2", "r9"), 1) == [1]
    late.expect_none()


def test_will_the_client_may_publish_is_published(fleet, version):
    """The positive case: a will on its own room, QoS 1 and retained, goes out when the connection
    is lost and is retained."""
    dash = fleet.dashboard()
    assert dash.subscribe(temperature("b1", "r1"), 1) == [1]
    r, _ = raw_user_with_will(fleet, "t-b1-r1", version, Will(temperature("b1", "r1"), b"offline", 1, True), 0)
    r.close()  # no DISCONNECT: the will is due
    m = dash.expect()
    assert (m.topic, m.payload) == (temperature("b1", "r1"), b"offline")
    late = fleet.dashboard()
    assert late.subscribe(temperature("b1", "r1"), 1) == [1]
    m = late.expect()
    assert (m.payload, m.retain) == (b"offline", True)


def test_will_is_checked_again_when_published_after_a_reload(make_fleet, version):
    """The will was allowed at CONNECT; a reload takes the right away before the client disconnects:
    the will is not published, and the log says so."""
    f = make_fleet()
    cert = f.certs["t-cert-1"]
    dash = f.dashboard()
    assert dash.subscribe("devices/#", 1) == [1]
    r = f._raw("certs", version, cert)
    r.connect(client_id=cert.cn, will=Will(f"devices/{cert.cn}/status", b"offline", 1, True), expect_rc=0)
    reload_topics(f, topics_toml(thermostat_status=False))  # status: only the hvac-controller now
    since = len(f.broker.stderr_text())
    r.close()
    e = f.broker.wait_for_event("will_refused", since, client_id=cert.cn, topic=f"devices/{cert.cn}/status")
    assert (e["qos"], e["retain"], e["decision"]) == (1, True, "deny"), e
    dash.expect_none()
    late = f.dashboard()
    assert late.subscribe("devices/#", 1) == [1]
    late.expect_none()


# ----------------------------------------------------------------------------------------------
# Queued and in-flight deliveries after a reload


def test_queued_and_inflight_messages_are_not_delivered_after_the_right_is_removed(make_fleet, version):
    """A controller subscribes to its building's temperatures, with a persistent session, and takes
    two messages without acknowledging them (Receive Maximum 2 in 5.0; the broker's window of 2 in
    3.1.1), so that further ones wait in its queue; it goes away and more are queued. A reload takes
    the right away: when it comes back, neither the resend of what was in flight nor the queue
    reaches it."""
    f = make_fleet({"limits": {"max_inflight": 2}})
    t = f.raw_user("t-b1-r1")
    ctl = f._raw("tokens", version)
    client_id = unique("ctl")
    token = f.token("ctl-b1", kind="hvac-controller", building="b1").encode()
    props = {"SessionExpiryInterval": 300, "ReceiveMaximum": 2} if version == V5 else None
    ctl.connect(client_id=client_id, clean=False, props=props, username="ctl-b1", password=token, expect_rc=0)
    assert ctl.subscribe([("buildings/b1/rooms/+/temperature", 1)]).codes == [1]
    for i in range(4):
        t.publish(temperature("b1", "r1"), f"m{i}".encode(), 1)
        assert t.expect(PUBACK).reason == 0
    got = [ctl.expect(PUBLISH) for _ in range(2)]  # not acknowledged: in flight
    assert [p.payload for p in got] == [b"m0", b"m1"]
    ctl.close()
    for i in range(4, 6):
        t.publish(temperature("b1", "r1"), f"m{i}".encode(), 1)
        assert t.expect(PUBACK).reason == 0
    reload_topics(f, topics_toml(controller_reads_temperature=False))
    back = f._raw("tokens", version)
    ack = back.connect(client_id=client_id, clean=False, props=props, username="ctl-b1", password=token,
                       expect_rc=0)
    assert ack.session_present
    back.expect_no_packet(1.0)


# ----------------------------------------------------------------------------------------------
# {client_id} binds only a client id the identity is entitled to


@pytest.mark.parametrize("who", ["password", "token", "certificate-any"])
def test_client_id_placeholder_needs_a_bound_client_id(make_fleet, version, who):
    """devices/{client_id}/status may be published by thermostats. A thermostat whose client id is
    not bound to its identity (a password user, a token, a certificate with client_id = "any")
    names itself after another device and tries that device's topic: refused (5.0 PUBACK 0x87),
    nothing delivered."""
    overrides = {"auth": {"certificate": {"client_id": "any"}}} if who == "certificate-any" else None
    f = make_fleet(overrides)
    dash = f.dashboard()
    assert dash.subscribe("devices/+/status", 1) == [1]
    victim = "t-cert-2"
    if who == "password":
        r = f._raw("users", version)
        r.connect(client_id=victim, username="t-b1-r1", password=PASSWORD.encode(), expect_rc=0)
    elif who == "token":
        r = f._raw("tokens", version)
        r.connect(client_id=victim, username="t-tok", expect_rc=0,
                  password=f.token("t-tok", kind="thermostat", building="b1", room="r1").encode())
    else:
        r = f._raw("certs", version, f.certs["t-cert-1"])
        r.connect(client_id=victim, expect_rc=0)
    pid = r.publish(f"devices/{victim}/status", b"forged", 1)
    ack = r.expect(PUBACK)
    assert ack.pid == pid
    if version == V5:
        assert ack.reason == 0x87, ack
    dash.expect_none()


def test_check_warns_about_client_id_grants_that_unbound_identities_cannot_use(make_fleet, tmp_path):
    """`firehook check` names the grant that binds {client_id} and the listeners whose clients it
    will never apply to."""
    from conftest import firehook_binary

    f = make_fleet()
    r = subprocess.run([firehook_binary(), "check", "-c", str(f.broker.config_path)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if "{client_id}" in line and "warning" in line]
    assert warnings, r.stderr
    assert "topics.toml:" in warnings[0] and '"users"' in warnings[0] and '"tokens"' in warnings[0], warnings
