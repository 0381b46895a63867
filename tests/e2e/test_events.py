"""Security and lifecycle events (docs/events.md): every type is produced by a real client's doing
and logged as one JSON object with its fields. Every broker of the e2e suite logs in JSON
(conftest.py), and every line it writes must parse; here each event type is triggered and its line
checked field by field.

Events needing the topics file (rules in refusals, revoked subscriptions, wills refused after a
reload, reloads) use the topics fleet of test_topics.py.

Every event also reaches the audit log (docs/audit.md): after each test, every event type its
brokers logged must be a record of their audit logs, and `firehook audit verify` must pass on them.
"""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import firehook_binary

from pahoclient import V311, V5, unique
from pki import pki  # noqa: F401  (a fixture)
from rawclient import PUBACK, Will
from topics_helpers import replace_file, topics_toml
from topics_helpers import certs, fleet, jwt_key, make_fleet, users_db  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[2]
# The event types the tests below trigger, each checked field by field; compared at the end with
# the broker's list (src/events/event.hpp) and the documented one (docs/events.md).
TRIGGERED = {
    "connection_accepted", "connection_refused", "auth_allowed", "auth_denied", "client_disconnected",
    "session_taken_over", "publish_refused", "subscribe_granted", "subscribe_refused", "subscription_revoked",
    "message_dropped", "will_published", "will_refused", "reload", "limit_reached", "events_lost", "store",
    "admin_request", "alert", "ban", "login_delayed",
}
# Triggered, field by field, in the test file of their feature.
TRIGGERED_ELSEWHERE = {"enrollment_issued": "test_enrollment.py", "enrollment_refused": "test_enrollment.py"}


@pytest.fixture(autouse=True)
def every_logged_event_is_audited(tmp_path):
    """Runs after the test's brokers have stopped (set up first, so torn down last)."""
    yield
    for audit_dir in tmp_path.rglob("audit"):
        stderr = audit_dir.parent.parent / "firehook.stderr"
        files = sorted(audit_dir.glob("audit*.log"))
        if not stderr.exists() or not files:
            continue
        lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.strip()]
        # The log's own line cap is not a loss of the audit log, which has no cap.
        logged = {e.get("event") for e in lines if not e.get("reason", "").startswith("not written to the log")}
        audited = {json.loads(line).get("event") for f in files for line in f.read_text().splitlines()}
        missing = (logged - audited) - {None}
        assert not missing, f"logged but not in the audit log of {audit_dir}: {sorted(missing)}"
        r = subprocess.run([firehook_binary(), "audit", "verify", *map(str, files)], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r


def covers(kind):
    assert kind in TRIGGERED, kind
    return kind


def who_fields(e, client_id, method="anonymous", identity="anonymous"):
    assert (e.get("client_id"), e.get("method"), e.get("identity")) == (client_id, method, identity), e
    assert e["listener"] == "default" and e["peer"] == "127.0.0.1" and e["peer_port"] > 0, e


def test_connection_accepted_and_auth_allowed(broker, raw):
    r = raw(broker, V5)
    cid = unique("ok")
    r.connect(client_id=cid)
    accepted = broker.wait_for_event(covers("connection_accepted"))
    assert (accepted["listener"], accepted["peer"], accepted["level"]) == ("default", "127.0.0.1", "info")
    e = broker.wait_for_event(covers("auth_allowed"), client_id=cid)
    who_fields(e, cid)
    assert (e["decision"], e["reason_code"]) == ("allow", "0x00"), e


def test_connection_refused_at_max_connections_and_connect_timeout(start_broker, raw):
    b = start_broker({"limits": {"max_connections": 1, "connect_timeout": 1}})
    quiet = raw(b, V5)  # never sends CONNECT: closed after connect_timeout
    refused = raw(b, V5)  # beyond max_connections: closed at accept
    assert refused.wait_closed() == []
    e = b.wait_for_event(covers("connection_refused"), subject="limits.max_connections")
    assert (e["decision"], e["peer"]) == ("deny", "127.0.0.1"), e
    assert quiet.wait_closed(timeout=5) == []
    e = b.wait_for_event("connection_refused", subject="limits.connect_timeout")
    assert e["reason"] == "no CONNECT in time", e


def test_auth_denied_without_credentials(start_broker, raw, version):
    b = start_broker({"listener": [{"name": "default", "address": "127.0.0.1", "port": 0, "protocol": "mqtt",
                                    "allow_anonymous": False}]})
    r = raw(b, version)
    cid = unique("anon")
    r.connect(client_id=cid, expect_rc=0x87 if version == V5 else 0x05)
    e = b.wait_for_event(covers("auth_denied"), client_id=cid)
    assert (e["decision"], e["reason_code"], e["level"]) == ("deny", "0x87", "warning"), e
    assert "anonymous access is off" in e["reason"], e


def test_client_disconnected_by_client_and_by_server(broker, raw, clients):
    c = clients(broker, V5)
    c.disconnect()
    e = broker.wait_for_event(covers("client_disconnected"), client_id=c.client_id)
    who_fields(e, c.client_id)
    assert (e["initiator"], e["packet"], e["reason_code"]) == ("client", "DISCONNECT", "0x00"), e
    # A protocol error: the server ends it, and names the packet.
    r = raw(broker, V5)
    cid = unique("bad")
    r.connect(client_id=cid)
    r.publish("a/b", b"x", 1, props={"SubscriptionIdentifier": 1})
    r.wait_closed()
    e = broker.wait_for_event("client_disconnected", client_id=cid)
    assert (e["initiator"], e["packet"], e["reason_code"]) == ("server", "PUBLISH", "0x82"), e
    # The connection just lost (no DISCONNECT).
    k = clients(broker, V311)
    k.kill()
    e = broker.wait_for_event("client_disconnected", client_id=k.client_id)
    assert (e["initiator"], e["reason"]) == ("client", "connection lost"), e


def test_session_taken_over(broker, raw):
    cid = unique("twice")
    first = raw(broker, V5)
    first.connect(client_id=cid)
    second = raw(broker, V5)
    second.connect(client_id=cid)
    assert [p.reason for p in first.wait_closed()] == [0x8E]
    e = broker.wait_for_event(covers("session_taken_over"), client_id=cid)
    assert re.fullmatch(r"127\.0\.0\.1:\d+", e["old_peer"]) and re.fullmatch(r"127\.0\.0\.1:\d+", e["new_peer"]), e
    assert e["old_peer"] != e["new_peer"], e
    gone = broker.wait_for_event("client_disconnected", client_id=cid)
    assert (gone["initiator"], gone["reason_code"]) == ("server", "0x8E"), gone


def test_refused_publish_and_subscribe_name_client_identity_topic_and_rule(fleet):
    """The acceptance check of the events issue: who tried what, and which rule said no."""
    r = fleet.raw_user("t-b1-r1")
    r.publish("buildings/b2/rooms/r1/temperature", b"x", 1)
    assert r.expect(PUBACK).reason == 0x87
    e = fleet.broker.wait_for_event(covers("publish_refused"), topic="buildings/b2/rooms/r1/temperature")
    assert (e["method"], e["identity"], e["qos"], e["retain"], e["reason_code"]) == ("password", "t-b1-r1", 1, False,
                                                                                     "0x87"), e
    assert e["client_id"].startswith("t-b1-r1") and e["reason"] == "no grant (deny by default)", e
    # A QoS above the topic's maximum names the grant that refused it.
    r.publish("buildings/b1/rooms/r1/temperature", b"x", 2)
    e = fleet.broker.wait_for_event("publish_refused", topic="buildings/b1/rooms/r1/temperature", qos=2)
    assert "topics.toml:" in e["rule"] and "publish grant" in e["rule"] and "max_qos" in e["reason"], e

    ctl = fleet.raw_token("ctl-b1", kind="hvac-controller", building="b1")
    codes = ctl.subscribe([("buildings/b1/rooms/+/temperature", 1), ("buildings/#", 1)]).codes
    assert codes == [1, 0x87]
    granted = fleet.broker.wait_for_event(covers("subscribe_granted"), topic="buildings/b1/rooms/+/temperature")
    assert (granted["identity"], granted["method"], granted["qos"], granted["decision"]) == ("ctl-b1", "jwt", 1,
                                                                                           "allow"), granted
    assert "subscribe grant" in granted["rule"], granted
    refused = fleet.broker.wait_for_event(covers("subscribe_refused"), topic="buildings/#")
    assert (refused["identity"], refused["reason_code"], refused["decision"]) == ("ctl-b1", "0x87", "deny"), refused


def test_subscription_revoked_and_reload(make_fleet):
    f = make_fleet()
    ctl = f.raw_token("ctl-b1", kind="hvac-controller", building="b1")
    assert ctl.subscribe([("buildings/b1/rooms/+/temperature", 1)]).codes == [1]
    replace_file(f.broker.topics_path, topics_toml(controller_reads_temperature=False))
    f.broker.send_signal(signal.SIGHUP)
    e = f.broker.wait_for_event(covers("subscription_revoked"), topic="buildings/b1/rooms/+/temperature")
    assert (e["identity"], e["decision"]) == ("ctl-b1", "deny"), e
    e = f.broker.wait_for_event(covers("reload"), decision="allow", predicate=lambda e: "topics" in e["subject"])
    # A broken file is refused, and says so.
    replace_file(f.broker.topics_path, "[[topic]\n")
    f.broker.send_signal(signal.SIGHUP)
    e = f.broker.wait_for_event("reload", decision="deny", predicate=lambda e: "topics" in e["subject"])
    assert "previous version stays in force" in e["reason"], e


def test_message_dropped(start_broker, clients, raw):
    b = start_broker({"limits": {"max_queued_messages": 1}})
    cid = unique("slow")
    r = raw(b, V5)
    r.connect(client_id=cid, clean=False, props={"SessionExpiryInterval": 60})
    r.subscribe([("drop/t", 1)])
    r.close()
    b.wait_for_event("client_disconnected", client_id=cid)  # offline before the messages come
    pub = clients(b, V5)
    for i in range(4):
        pub.publish("drop/t", str(i).encode(), 1)
    e = b.wait_for_event(covers("message_dropped"), client_id=cid)
    assert e["count"] >= 1 and "max_queued" in e["reason"], e


def test_will_published_and_will_refused(make_fleet, clients):
    f = make_fleet()
    cert = f.certs["t-cert-1"]
    r = f._raw("certs", V5, cert)
    r.connect(client_id=cert.cn, will=Will(f"devices/{cert.cn}/status", b"offline", 1, True), expect_rc=0)
    r.close()
    e = f.broker.wait_for_event(covers("will_published"), client_id=cert.cn)
    assert (e["topic"], e["qos"], e["retain"], e["identity"]) == (f"devices/{cert.cn}/status", 1, True, cert.cn), e
    r = f._raw("certs", V5, cert)
    r.connect(client_id=cert.cn, will=Will(f"devices/{cert.cn}/status", b"offline", 1, True), expect_rc=0)
    replace_file(f.broker.topics_path, topics_toml(thermostat_status=False))
    f.broker.send_signal(signal.SIGHUP)
    f.broker.wait_for_event("reload", decision="allow")
    r.close()
    e = f.broker.wait_for_event(covers("will_refused"), client_id=cert.cn)
    assert (e["decision"], e["topic"]) == ("deny", f"devices/{cert.cn}/status"), e


def test_limit_reached_for_a_retained_message_not_stored(start_broker, clients):
    b = start_broker({"limits": {"max_retained_messages": 1}})
    pub = clients(b, V5)
    pub.publish("keep/1", b"a", 1, retain=True)
    pub.publish("keep/2", b"b", 1, retain=True)
    e = b.wait_for_event(covers("limit_reached"), topic="keep/2")
    assert (e["client_id"], e["decision"]) == (pub.client_id, "deny") and "max_retained_messages" in e["subject"], e


def test_identical_events_are_written_once_then_counted(start_broker, raw, clients):
    """400 identical refusals: one line, then lines with "repeated" that together account for all;
    the statistics count every one ($SYS/broker/events/<type>)."""
    b = start_broker({"log": {"format": "json", "repeat_window": 1}, "broker": {"sys_interval": 1}})
    r = raw(b, V5)
    cid = unique("flood")
    r.connect(client_id=cid)
    for _ in range(400):
        r.publish("$SYS/forged", b"x", 0)
    r.subscribe([("after/flood", 0)])  # everything before it was read
    deadline = time.monotonic() + 10
    while True:
        lines = b.events("publish_refused", client_id=cid)
        # A "repeated" line stands for that many events (itself included); the others for one each.
        total = sum(e.get("repeated", 1) for e in lines)
        if total == 400:
            break
        assert time.monotonic() < deadline, f"{total} of 400 refusals accounted for in {len(lines)} lines"
        time.sleep(0.1)
    assert len(lines) < 20, f"{len(lines)} lines for 400 identical events"
    watch = clients(b, V5)
    watch.subscribe("$SYS/broker/events/publish_refused", 0)
    deadline = time.monotonic() + 10
    while int(watch.expect(timeout=10).payload) < 400:
        assert time.monotonic() < deadline, "$SYS/broker/events/publish_refused did not count them all"


def test_lines_over_the_cap_are_counted_in_events_lost(start_broker, raw):
    b = start_broker({"log": {"format": "json", "max_event_lines_per_second": 50}})
    r = raw(b, V5)
    r.connect(client_id=unique("many"))
    r.subscribe([(f"many/{i}", 0) for i in range(80)])
    lost = b.wait_for_event(covers("events_lost"), predicate=lambda e: "lines in one second" in e["reason"])
    assert lost["count"] >= 25, lost


def test_admin_request(start_broker, tmp_path):
    b = start_broker({"broker": {"state_dir": str(tmp_path / "st")}, "admin": {"port": 0}})
    host, port = b.listeners["admin"]
    subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://{host}:{port}/metrics"], timeout=15, check=True)
    e = b.wait_for_event(covers("admin_request"))
    assert (e["listener"], e["peer"], e["subject"], e["decision"]) == ("admin", "127.0.0.1", "GET /metrics", "deny"), e
    assert e["reason"] == "401: no bearer token" and "identity" not in e, e


def test_alert(start_broker, raw):
    b = start_broker({"alerts": {"flapping": 3}})
    cid = unique("flap")
    for _ in range(3):
        r = raw(b, V5)
        r.connect(client_id=cid)
        r.close()
    e = b.wait_for_event(covers("alert"), subject="client_id_flapping")
    assert (e["client_id"], e["level"], e["count"]) == (cid, "warning", 3), e
    assert "lost its connection 3 times" in e["reason"], e


def test_store(start_broker, raw, tmp_path):
    b = start_broker({"broker": {"state_dir": str(tmp_path / "st")}, "store": {"max_bytes": 256 * 1024}})
    r = raw(b, V5)
    r.connect(client_id=unique("filler"))
    for i in range(64):
        r.publish(f"fill/{i}", os.urandom(32 * 1024), qos=1, retain=True)
        if r.expect(PUBACK, timeout=10).reason == 0x97:
            break
    e = b.wait_for_event(covers("store"))
    assert e["level"] == "warning" and e["count"] == 1 and "refused" in e["reason"], e
    assert e["subject"].endswith("store"), e


def test_client_text_cannot_break_the_json_lines(broker, raw):
    """Quotes, backslashes and control characters in a client id and a topic are escaped: every line
    still parses (conftest checks all of them at the end), and the values come back intact."""
    cid = 'q"uo\\te\x01'
    r = raw(broker, V5)
    r.connect(client_id=cid)
    r.subscribe([('a/"b"\\c\x02', 0)])
    e = broker.wait_for_event("subscribe_granted", client_id=cid)
    assert e["topic"] == 'a/"b"\\c\x02', e


def test_login_delayed_and_ban(start_broker, tmp_path):
    """One failed login makes the next attempt of that user name wait (login_failures = 1), and the
    second failure bans the address (ban_after_failures = 2) for 1 s, which then expires."""
    from test_auth_password import user_cmd
    from rawclient import RawClient, connect_packet
    users = tmp_path / "users.db"
    user_cmd(users, "add", "dev1", password="right horse")
    b = start_broker({"abuse": {"login_failures": 1, "ban_after_failures": 2, "ban_time": 1},
                      "listener": [{"name": "default", "address": "127.0.0.1", "port": 0, "protocol": "mqtt",
                                    "allow_anonymous": False, "auth": ["password"]}],
                      "auth.password": {"database": str(users)}})
    for _ in range(2):
        r = RawClient(b.host, b.port, V5, source=("127.0.0.5", 0))
        r.send(connect_packet(V5, "x", username="dev1", password=b"wrong"))
        r.wait_closed()
    e = b.wait_for_event("login_delayed")
    assert e["peer"] == "127.0.0.5" and e["username"] == "dev1" and e["delay_ms"] == 500 and e["count"] == 1, e
    assert e["level"] == "warning", e
    e = b.wait_for_event("ban", change="added")
    assert (e["kind"], e["subject"], e["source"]) == ("address", "127.0.0.5", "login failures"), e
    assert e["until"].endswith("Z") and "2 failed logins" in e["reason"], e
    e = b.wait_for_event("ban", change="expired", timeout=5)
    assert e["subject"] == "127.0.0.5", e


def test_every_event_type_is_documented_and_triggered_here():
    source = (REPO / "src" / "events" / "event.hpp").read_text()
    declared = set(re.findall(r"^\s*X\(([a-z_]+),", source, re.M))
    documented = set(re.findall(r"^\| `([a-z_]+)` \| (?:info|warning) \|", (REPO / "docs" / "events.md").read_text(),
                                re.M))
    assert declared, "no event types found in src/events/event.hpp"
    assert documented == declared, f"docs/events.md and the broker differ: {sorted(documented ^ declared)}"
    assert TRIGGERED | set(TRIGGERED_ELSEWHERE) == declared, f"not triggered: {sorted(declared - TRIGGERED)}"
    for kind, test_file in TRIGGERED_ELSEWHERE.items():
        assert f'"{kind}"' in (Path(__file__).parent / test_file).read_text(), (kind, test_file)
