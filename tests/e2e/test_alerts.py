"""Alerts on unusual activity (docs/audit.md#alerts): each detector fires on its scenario, driven by
real clients (mosquitto_pub, raw MQTT connections from two loopback addresses), and stays quiet on
the normal traffic of the same tests; an alert is an event in the log and a record of the audit log."""

import json
import subprocess
import time

from conftest import firehook_binary, write_config
from pahoclient import V5, unique
from rawclient import PUBACK, SUBACK, RawClient, sub_options, subscribe_packet


def alerts(broker, detector):
    return broker.events("alert", subject=detector)


def test_password_guessing_from_one_address(start_broker):
    b = start_broker({"alerts": {"auth_failures": 5}})
    for i in range(4):
        p = subprocess.run(["mosquitto_pub", "-h", b.host, "-p", str(b.port), "-i", f"guess-{i}", "-u", f"user{i}",
                            "-P", "wrong", "-t", "t", "-m", "x"], capture_output=True, timeout=15)
        assert p.returncode != 0
    time.sleep(0.3)
    assert alerts(b, "auth_failures") == [], "4 failures are under the threshold of 5"
    subprocess.run(["mosquitto_pub", "-h", b.host, "-p", str(b.port), "-i", "guess-4", "-u", "user4", "-P", "wrong",
                    "-t", "t", "-m", "x"], capture_output=True, timeout=15)
    a = b.wait_for_event("alert", subject="auth_failures")
    assert (a["peer"], a["level"], a["count"]) == ("127.0.0.1", "warning", 5), a
    assert "5 refused CONNECTs from 127.0.0.1 within 60 s" in a["reason"], a
    b.stop()
    assert any(r.get("subject") == "auth_failures" for r in b.audit_records("alert"))


def test_probing_for_topics_without_rights(start_broker, raw):
    b = start_broker({"alerts": {"probing": 5}})
    r = raw(b, V5)
    r.connect(client_id=unique("probe"))
    for i in range(5):
        r.publish(f"$SYS/forged/{i}", b"x", 1)
        assert r.expect(PUBACK).reason == 0x87
    a = b.wait_for_event("alert", subject="probing")
    assert a["identity"] == "anonymous" and "5 refused PUBLISH/SUBSCRIBE" in a["reason"], a


def test_client_id_flapping(start_broker, raw):
    b = start_broker({"alerts": {"flapping": 4}})
    cid = unique("flap")
    for _ in range(4):
        r = raw(b, V5)
        r.connect(client_id=cid)
        r.close()
    a = b.wait_for_event("alert", subject="client_id_flapping")
    assert a["client_id"] == cid and "lost its connection 4 times" in a["reason"], a


def test_one_credential_from_two_addresses_at_once(start_broker, tmp_path):
    state = tmp_path / "st"
    settings = {"broker": {"state_dir": str(state)}}

    cfg, _ = write_config(tmp_path, settings, name="users.toml")
    subprocess.run([firehook_binary(), "user", "-c", str(cfg), "add", "meter-9", "--password-stdin"],
                   input="s3cret-pass\n", text=True, check=True, capture_output=True, timeout=60)
    b = start_broker(settings)
    first = RawClient(b.host, b.port, V5, source=("127.0.0.1", 0))
    second = RawClient(b.host, b.port, V5, source=("127.0.0.2", 0))
    try:
        first.connect(client_id="meter-9-a", username="meter-9", password=b"s3cret-pass")
        # A quick reconnect from one place is no alert: only both at once, for longer than 2 s.
        time.sleep(0.5)
        assert alerts(b, "shared_credential") == []
        second.connect(client_id="meter-9-b", username="meter-9", password=b"s3cret-pass")
        a = b.wait_for_event("alert", subject="shared_credential", timeout=10)
        assert (a["identity"], a["method"]) == ("meter-9", "password"), a
        assert "127.0.0.1" in a["reason"] and "127.0.0.2" in a["reason"], a
    finally:
        first.close()
        second.close()


def test_normal_traffic_raises_no_alert(start_broker, clients):
    b = start_broker()
    sub = clients(b, V5, client_id=unique("sub"))
    sub.subscribe("plant/#", 1)
    pub = clients(b, V5, client_id=unique("pub"))
    for i in range(50):
        pub.publish("plant/line1", b"%d" % i, 1)
    for _ in range(50):
        sub.expect()
    for _ in range(3):
        c = clients(b, V5, client_id=unique("short"))
        c.disconnect()
    time.sleep(2.5)  # past the shared-credential grace
    assert b.events("alert") == []


def test_a_client_over_its_rate_again_and_again(start_broker, raw):
    """Each time its bucket runs dry the client is held (one limit_reached); once it has recovered
    (a SUBSCRIBE that leaves its bucket half full) it may go over again. The third time within the
    window is an alert."""
    b = start_broker({"alerts": {"rate_limited": 3}, "limits": {"subscribe_rate": 4, "subscribe_burst": 2}})
    r = raw(b, V5)
    cid = unique("rate")
    r.connect(client_id=cid)
    pid = 0
    for _ in range(3):
        for _ in range(3):  # two pass, the third waits for a token: over its rate
            pid += 1
            r.send(subscribe_packet(5, pid, [(f"alerts/rate/{pid}", sub_options(0))]))
        for _ in range(3):
            assert r.recv(5).type == SUBACK
        time.sleep(0.6)  # the bucket is full again
        pid += 1
        r.send(subscribe_packet(5, pid, [(f"alerts/rate/{pid}", sub_options(0))]))  # recovered
        assert r.recv(5).type == SUBACK
        time.sleep(0.6)
    a = b.wait_for_event("alert", subject="rate_limited")
    assert a["client_id"] == cid and "went over its publish or subscribe rate 3 times" in a["reason"], a
