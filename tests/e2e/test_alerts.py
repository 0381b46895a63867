"""Alerts on unusual activity (docs/audit.md#alerts): each detector fires on its scenario, driven by
real clients (mosquitto_pub, raw MQTT connections from two loopback addresses), and stays quiet on
the normal traffic of the same tests; an alert is an event in the log and a record of the audit log.
It is also a message on $SYS/broker/alerts/<detector> for the clients the topics file grants it
(paho), and a POST to the webhook (a Python http.server on 127.0.0.1, with a retry); a server
certificate about to expire raises one at start-up."""

import json
import subprocess
import time

from conftest import firehook_binary, write_config
from pahoclient import V311, V5, unique
from pki import pki  # noqa: F401  (pki is a fixture)
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


def meter_broker(start_broker, tmp_path, **settings):
    """A broker whose credential store has the user meter-9 (password s3cret-pass)."""
    settings["broker"] = {"state_dir": str(tmp_path / "st")}
    cfg, _ = write_config(tmp_path, settings, name="users.toml")
    subprocess.run([firehook_binary(), "user", "-c", str(cfg), "add", "meter-9", "--password-stdin"],
                   input="s3cret-pass\n", text=True, check=True, capture_output=True, timeout=60)
    return start_broker(settings)


def test_one_credential_from_two_addresses_at_once(start_broker, tmp_path):
    b = meter_broker(start_broker, tmp_path)
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


def test_refuse_new_keeps_the_connected_device_and_refuses_its_clone(start_broker, tmp_path):
    """[limits] duplicate = "refuse_new": the clone of a connected identity is refused (5.0 0x97,
    3.1.1 0x03), even with the same client id (no takeover), and that is a shared_credential alert
    at once; once the real device has gone, it reconnects."""
    b = meter_broker(start_broker, tmp_path, limits={"duplicate": "refuse_new"})
    real = RawClient(b.host, b.port, V5, source=("127.0.0.1", 0))
    try:
        real.connect(client_id="meter-9", username="meter-9", password=b"s3cret-pass")
        for version, client_id, code in ((V5, "meter-9", 0x97), (V311, "meter-9", 0x03), (V5, "meter-9-b", 0x97)):
            clone = RawClient(b.host, b.port, version, source=("127.0.0.2", 0))
            ack = clone.connect(client_id=client_id, username="meter-9", password=b"s3cret-pass", expect_rc=None)
            assert ack.reason == code, (version, client_id, ack)
            assert clone.wait_closed() == []
        assert real.is_open(), "the connected device keeps its connection"
        a = b.wait_for_event("alert", subject="shared_credential", timeout=5)
        assert a["peer"] == "127.0.0.2" and "while it was connected" in a["reason"], a
        assert len(alerts(b, "shared_credential")) == 1, "one alert per window"
        # (The log writes the two identical refusals of client id meter-9 once within 10 s.)
        denied = b.events("auth_denied", identity="meter-9")
        assert {e["client_id"] for e in denied} == {"meter-9", "meter-9-b"}, denied
        assert all(e["subject"] == "limits.duplicate" for e in denied), denied
    finally:
        real.close()
    b.wait_for_event("client_disconnected", client_id="meter-9")
    again = RawClient(b.host, b.port, V5, source=("127.0.0.2", 0))
    try:
        assert again.connect(client_id="meter-9", username="meter-9", password=b"s3cret-pass").reason == 0
    finally:
        again.close()


def test_one_credential_from_addresses_that_change_faster_than_a_device_moves(start_broker, tmp_path):
    """Never at two places at once (so no shared_credential), but from a third address within the
    window: a copied credential used from several places in turn."""
    b = meter_broker(start_broker, tmp_path, alerts={"address_changes": 3})
    for n, source in enumerate(["127.0.0.1", "127.0.0.2", "127.0.0.2", "127.0.0.3"]):
        if n == 3:
            assert alerts(b, "address_hopping") == []  # a device that moved once is no alert
        c = RawClient(b.host, b.port, V5, source=(source, 0))
        c.connect(client_id="meter-9", username="meter-9", password=b"s3cret-pass")
        c.close()
    a = b.wait_for_event("alert", subject="address_hopping")
    assert (a["identity"], a["method"], a["count"]) == ("meter-9", "password", 3), a
    assert a["reason"].endswith("127.0.0.1, 127.0.0.2, 127.0.0.3"), a
    assert alerts(b, "shared_credential") == []


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


def paced(steps, period, each):
    """Calls each(step) `steps` times, one every `period` seconds (not drifting)."""
    start = time.monotonic()
    for step in range(steps):
        each(step)
        delay = start + (step + 1) * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def test_a_client_far_above_its_learned_rate_and_a_steady_one(start_broker, clients, tmp_path):
    """Rate baselines (1 s intervals, judged after 3): a meter that published 5 messages a second
    for a while and then 100 a second (20 times) raises rate_baseline naming its identity; a client
    publishing 20 a second throughout raises none."""
    settings = {"broker": {"state_dir": str(tmp_path / "st")},
                "alerts": {"baseline_interval": 1, "baseline_warmup": 3, "baseline_factor": 10,
                           "baseline_min_rate": 10}}
    cfg, _ = write_config(tmp_path, settings, name="users.toml")
    subprocess.run([firehook_binary(), "user", "-c", str(cfg), "add", "meter-7", "--password-stdin"],
                   input="s3cret-pass\n", text=True, check=True, capture_output=True, timeout=60)
    b = start_broker(settings)
    meter = password_client(clients, b, V5, "meter-7", "s3cret-pass")
    steady = clients(b, V5, client_id=unique("steady"))

    def learn(step):  # every 50 ms: the steady client 20/s, the meter 5/s
        steady.publish("plant/steady", b"%d" % step, 0)
        if step % 4 == 0:
            meter.publish("plant/meter", b"%d" % step, 0)

    paced(120, 0.05, learn)  # 6 s: a few samples past the warm-up
    assert alerts(b, "rate_baseline") == [], "5/s and 20/s are their usual rates"

    def burst(step):  # the meter 100/s
        steady.publish("plant/steady", b"%d" % step, 0)
        for i in range(5):
            meter.publish("plant/meter", b"%d-%d" % (step, i), 0)

    paced(50, 0.05, burst)  # 2.5 s
    a = b.wait_for_event("alert", subject="rate_baseline", timeout=5)
    assert (a["identity"], a["method"], a["client_id"]) == ("meter-7", "password", meter.client_id), a
    assert 'identity "meter-7" published' in a["reason"] and "more than 10 times its learned rate" in a["reason"], a
    assert a["count"] >= 50, a
    time.sleep(1.5)
    found = alerts(b, "rate_baseline")
    assert len(found) == 1, "one alert per identity per window, none for the steady client: %r" % found


def test_the_fleet_ceiling(start_broker, clients):
    """Every second the broker's received rate is compared with fleet_publish_ceiling (60/s here):
    two clients at 10/s each stay under it, at 100/s each they go over it."""
    b = start_broker({"alerts": {"baseline_interval": 1, "baseline_factor": 0, "fleet_publish_ceiling": 60}})
    pubs = [clients(b, V5, client_id=unique("fleet")) for _ in range(2)]

    def each(per_step):
        def publish(step):
            for p in pubs:
                for i in range(per_step):
                    p.publish("fleet/t", b"%d-%d" % (step, i), 0)
        return publish

    paced(30, 0.1, each(1))  # 3 s at 20/s in all
    assert alerts(b, "fleet_ceiling") == []
    paced(25, 0.1, each(10))  # 2.5 s at 200/s in all
    a = b.wait_for_event("alert", subject="fleet_ceiling", timeout=5)
    assert a["count"] > 60 and "above alerts.fleet_publish_ceiling = 60/s" in a["reason"], a
    assert alerts(b, "rate_baseline") == [], "baseline_factor = 0 turns that check off"


# ----------------------------------------------------------------------------------------------
# Where alerts go: $SYS/broker/alerts/<detector>, the webhook; the certificate_expiry detector.

OPS_TOPICS = """\
[roles.ops]
description = "Operations: reads the broker's alerts"
service = true

[roles.meter]
description = "A meter"

[[topic]]
pattern = "$SYS/broker/alerts/#"
description = "The broker's alerts (docs/audit.md#alerts), one JSON object each"
subscribe = ["ops"]

[[topic]]
pattern = "meters/#"
description = "Readings"
publish = ["meter"]
subscribe = ["meter"]
"""


def password_client(clients, b, version, user, password):
    c = clients(b, version, connect=False, client_id=unique(user))
    c.c.username_pw_set(user, password)
    c.connect()
    return c


def test_an_alert_reaches_the_sys_topic_subscribers_the_topics_file_grants_it(start_broker, clients, tmp_path,
                                                                              version):
    from topics_helpers import start_with_topics

    settings = {"broker": {"state_dir": str(tmp_path / "st")}, "alerts": {"auth_failures": 3}}
    cfg, _ = write_config(tmp_path, settings, name="users.toml")
    for user, role in (("ops-1", "ops"), ("meter-1", "meter")):
        subprocess.run([firehook_binary(), "user", "-c", str(cfg), "add", user, "--role", role, "--password-stdin"],
                       input="s3cret-pass\n", text=True, check=True, capture_output=True, timeout=60)
    b = start_with_topics(start_broker, OPS_TOPICS, settings)
    ops = password_client(clients, b, version, "ops-1", "s3cret-pass")
    assert ops.subscribe("$SYS/broker/alerts/#", 0) == [0]
    meter = password_client(clients, b, version, "meter-1", "s3cret-pass")
    refused = meter.subscribe("$SYS/broker/alerts/#", 0)
    assert refused[0] in (0x80, 0x87), refused
    assert meter.subscribe("meters/#", 0) == [0]

    for i in range(3):
        p = subprocess.run(["mosquitto_pub", "-h", b.host, "-p", str(b.port), "-i", f"guess-{i}", "-u", "nobody",
                            "-P", "wrong", "-t", "t", "-m", "x"], capture_output=True, timeout=15)
        assert p.returncode != 0
    m = ops.expect(timeout=10)
    assert m.topic == "$SYS/broker/alerts/auth_failures" and not m.retain, m
    alert = json.loads(m.payload)
    assert alert["event"] == "alert" and alert["detector"] == "auth_failures", alert
    assert alert["count"] == 3 and "3 refused CONNECTs" in alert["reason"], alert
    assert alert["time"].endswith("Z"), alert
    assert alert.get("peer") == "127.0.0.1" or alert.get("username") == "nobody", alert
    meter.expect_none(window=1.0)


def webhook_receiver(statuses):
    """A plain-http receiver on 127.0.0.1 answering each POST with the next of `statuses` (the last
    again when they run out). Returns (server, requests): requests is a list of (path, headers, body)."""
    import http.server
    import threading

    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            requests.append((self.path, dict(self.headers), body))
            status = statuses[min(len(requests), len(statuses)) - 1]
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, requests


def test_the_webhook_gets_each_alert_and_retries_a_failed_attempt(start_broker, raw, tmp_path):
    server, requests = webhook_receiver([500, 200])
    try:
        token = tmp_path / "webhook-token"
        token.write_text("t0ken-for-the-hook\n")
        b = start_broker({"alerts": {"probing": 3,
                                     "webhook": f"http://127.0.0.1:{server.server_address[1]}/hooks/firehook",
                                     "webhook_token_file": str(token)}})
        r = raw(b, V5)
        r.connect(client_id=unique("probe"))
        for i in range(3):
            r.publish(f"$SYS/forged/{i}", b"x", 1)
            assert r.expect(PUBACK).reason == 0x87
        deadline = time.monotonic() + 15  # the retry comes 1 s after the first attempt
        while len(requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # an accepted alert is not sent again
        assert len(requests) == 2, requests
        (path1, headers1, body1), (path2, headers2, body2) = requests
        assert path1 == path2 == "/hooks/firehook"
        assert body1 == body2, "the same alert, attempted twice"
        assert headers2["Content-Type"] == "application/json", headers2
        assert headers2["Authorization"] == "Bearer t0ken-for-the-hook", headers2
        alert = json.loads(body2)
        assert alert["detector"] == "probing" and alert["identity"] == "anonymous", alert
        assert any("accepted at attempt 2" in line.get("message", "") for line in b.log_lines()), b.stderr_text()
    finally:
        server.shutdown()


def test_a_plaintext_webhook_beyond_loopback_stops_start_up_naming_the_key(tmp_path):
    path, lines = write_config(tmp_path, {"alerts": {"webhook": "http://alerts.example.com/hook"}})
    p = subprocess.run([firehook_binary(), "serve", "-c", str(path)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p
    assert f"{path}:{lines['alerts.webhook']}:" in p.stderr and "alerts.webhook: " in p.stderr, p.stderr
    assert "loopback" in p.stderr, p.stderr


def test_a_server_certificate_expiring_in_10_days_raises_an_alert_at_start_up(start_broker, pki, tmp_path):
    import datetime

    end = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=10, hours=1)).strftime(
        "%Y%m%d%H%M%SZ")
    soon = pki.ca_authority.issue("/CN=localhost", "server_ext", tmp_path / "soon", "soon", enddate=end)
    b = start_broker({"listener": [{"name": "tls", "address": "127.0.0.1", "port": 0, "protocol": "mqtts",
                                    "allow_anonymous": True, "tls": {"cert": str(soon.cert), "key": str(soon.key),
                                                                     "client_certificates": "none"}}]})
    a = b.wait_for_event("alert", subject="certificate_expiry")
    assert a["listener"] == "tls" and a["count"] == 10, a
    assert "server certificate" in a["reason"] and "CN=localhost" in a["reason"] and "in 10 days" in a["reason"], a
    time.sleep(0.5)
    assert len(b.events("alert", subject="certificate_expiry")) == 1, "once, not at every tick"


def test_check_names_an_unreadable_webhook_token_file(tmp_path):
    path, lines = write_config(tmp_path, {"alerts": {"webhook": "https://alerts.example.com/hook",
                                                     "webhook_token_file": str(tmp_path / "missing-token")}})
    p = subprocess.run([firehook_binary(), "check", "-c", str(path)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p
    assert f"{path}:{lines['alerts.webhook_token_file']}:" in p.stderr, p.stderr
    assert "alerts.webhook_token_file: " in p.stderr and "missing-token" in p.stderr, p.stderr
