"""The admin endpoint (docs/admin.md), tested with curl and the Debian `prometheus_client` text
parser: no request gets anything without a bearer token; /metrics parses and its counters move as
clients act; /healthz and /readyz; bad requests get a 4xx with a JSON body; tokens added and
removed while the broker runs; its connection and request-size limits; every request an event."""

import calendar
import json
import socket
import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import firehook_binary, write_config
from pahoclient import V5, unique


def curl(broker, path, token=None, method="GET", headers=(), extra=()):
    host, port = broker.listeners["admin"]
    cmd = ["curl", "-s", "-S", "-o", "-", "-w", "\n%{http_code}", "-X", method, f"http://{host}:{port}{path}", *extra]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    for h in headers:
        cmd += ["-H", h]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=15)
    body, _, status = p.stdout.rpartition("\n")
    return int(status), body


def add_token(broker, name):
    p = subprocess.run([firehook_binary(), "admin", "-c", str(broker.config_path), "token", "add", name],
                       capture_output=True, text=True, timeout=15)
    assert p.returncode == 0 and p.stdout.startswith("fha_"), p
    return p.stdout.strip()


@pytest.fixture
def admin_broker(start_broker, tmp_path):
    """A broker with the admin endpoint and one token made before it starts."""
    state = tmp_path / "admin-state"
    settings = {"broker": {"state_dir": str(state)}, "admin": {"port": 0}}
    # The token file is made with the same configuration the broker will read.
    cfg, _ = write_config(tmp_path, settings, name="for-token.toml")
    p = subprocess.run([firehook_binary(), "admin", "-c", str(cfg), "token", "add", "scraper"],
                       capture_output=True, text=True, timeout=15)
    assert p.returncode == 0, p
    b = start_broker(settings)
    b.token = p.stdout.strip()
    return b


def samples(text):
    """{(name, frozenset(labels)): value} of the exposition, parsed by prometheus_client; a family
    declared twice (which the parser lets through) is an error."""
    out, families = {}, []
    for family in text_string_to_metric_families(text):
        assert family.name not in families, f"metric family {family.name} declared twice"
        families.append(family.name)
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_nothing_without_a_valid_bearer_token(admin_broker):
    for path in ("/metrics", "/healthz", "/readyz", "/nowhere"):
        status, body = curl(admin_broker, path)
        assert status == 401 and json.loads(body)["error"] == "no bearer token", (path, status, body)
    status, body = curl(admin_broker, "/metrics", token="fha_guessed")
    assert status == 401 and json.loads(body)["error"] == "not a valid bearer token"
    host, port = admin_broker.listeners["admin"]
    p = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", f"http://{host}:{port}/metrics"],
                       capture_output=True, text=True, timeout=15)
    assert 'www-authenticate: bearer realm="firehook"' in p.stdout.lower(), p.stdout


def test_metrics_parse_and_move(admin_broker, clients):
    before = samples(curl(admin_broker, "/metrics", admin_broker.token)[1])
    assert before[("firehook_clients_connected", frozenset())] == 0
    listener = frozenset({"listener": next(n for n in admin_broker.listeners if n != "admin")}.items())
    assert before[("firehook_listener_clients_connected", listener)] == 0
    assert before[("firehook_bans_active", frozenset())] == 0
    sub = clients(admin_broker, V5, client_id=unique("sub"))
    sub.subscribe("m/#", 1)
    pub = clients(admin_broker, V5, client_id=unique("pub"))
    for i in range(5):
        pub.publish("m/x", b"%d" % i, 1)
    for _ in range(5):
        sub.expect()
    p = subprocess.run(["mosquitto_pub", "-h", admin_broker.host, "-p", str(admin_broker.port), "-i", unique("bad"),
                        "-u", "nobody", "-P", "wrong", "-t", "t", "-m", "x"], capture_output=True, text=True, timeout=15)
    assert p.returncode != 0
    deadline = time.monotonic() + 10
    while True:
        status, text = curl(admin_broker, "/metrics", admin_broker.token)
        assert status == 200
        after = samples(text)
        fails = after.get(("firehook_auth_failures_total", frozenset({"method": "password", "reason_code": "0x86"}.items())), 0)
        # Shards add their counters to the broker's about every 100 ms.
        if after[("firehook_messages_received_total", frozenset())] >= 5 and fails >= 1:
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.2)
    assert after[("firehook_clients_connected", frozenset())] == 2
    assert after[("firehook_listener_clients_connected", listener)] == 2
    assert after[("firehook_messages_sent_total", frozenset())] >= 5
    assert after[("firehook_events_total", frozenset({"event": "auth_allowed"}.items()))] >= 2
    assert after[("firehook_received_bytes_total", frozenset())] > before[("firehook_received_bytes_total", frozenset())]
    assert after[("firehook_process_resident_bytes", frozenset())] > 1_000_000
    assert after[("firehook_audit_records_written_total", frozenset())] > 0
    sub.disconnect()
    ban = ["-H", "Content-Type: application/json", "--data", '{"kind":"client_id","subject":"meter-7"}']
    assert curl(admin_broker, "/bans", admin_broker.token, "POST", extra=ban)[0] == 201
    deadline = time.monotonic() + 10
    while True:
        now = samples(curl(admin_broker, "/metrics", admin_broker.token)[1])
        if now[("firehook_listener_clients_connected", listener)] == 1:
            break
        assert time.monotonic() < deadline, now
        time.sleep(0.1)
    assert now[("firehook_bans_active", frozenset())] == 1


def test_health_readiness_and_errors_as_json(admin_broker):
    t = admin_broker.token
    status, body = curl(admin_broker, "/healthz", t)
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, body = curl(admin_broker, "/readyz", t)
    assert status == 200 and json.loads(body)["status"] == "ready"
    status, body = curl(admin_broker, "/nowhere", t)
    assert status == 404 and json.loads(body)["error"] == "no such endpoint"
    status, body = curl(admin_broker, "/metrics", t, method="POST")
    assert status == 405 and "GET" in json.loads(body)["error"]
    status, body = curl(admin_broker, "/metrics", t, headers=[f"X-Padding: {'a' * 10000}"])
    assert status == 431 and "max_request_bytes" in json.loads(body)["error"], (status, body)
    # Not HTTP at all: 400, and the broker goes on.
    host, port = admin_broker.listeners["admin"]
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01 not a request\r\n\r\n")
        reply = s.recv(4096).decode("latin-1")
    assert reply.startswith("HTTP/1.1 400"), reply
    assert curl(admin_broker, "/healthz", t)[0] == 200


def test_not_ready_while_connections_are_refused(start_broker, tmp_path):
    state = tmp_path / "st"
    settings = {"broker": {"state_dir": str(state)}, "admin": {"port": 0},
                "audit": {"file": "/dev/full", "on_failure": "refuse"}}
    b = start_broker(settings)
    token = add_token(b, "probe")
    deadline = time.monotonic() + 5
    while curl(b, "/readyz", token)[0] == 401:  # the token file is picked up within a second
        assert time.monotonic() < deadline
        time.sleep(0.1)
    status, body = curl(b, "/readyz", token)
    assert status == 503 and "audit log cannot be written" in json.loads(body)["why"], body


def test_tokens_added_and_removed_while_running(admin_broker):
    since = len(admin_broker.stderr_text())
    token = add_token(admin_broker, "ops-laptop")
    admin_broker.wait_for_event("reload", since, decision="allow", timeout=5,
                                predicate=lambda e: "admin tokens" in e["subject"])
    assert curl(admin_broker, "/healthz", token)[0] == 200
    e = admin_broker.wait_for_event("admin_request", since, identity="ops-laptop")
    assert (e["subject"], e["decision"], e["reason"], e["peer"]) == ("GET /healthz", "allow", "200", "127.0.0.1"), e
    since = len(admin_broker.stderr_text())
    p = subprocess.run([firehook_binary(), "admin", "-c", str(admin_broker.config_path), "token", "remove",
                        "ops-laptop"], capture_output=True, text=True, timeout=15)
    assert p.returncode == 0, p
    admin_broker.wait_for_event("reload", since, decision="allow", timeout=5,
                                predicate=lambda e: "admin tokens" in e["subject"])
    assert curl(admin_broker, "/healthz", token)[0] == 401
    assert curl(admin_broker, "/healthz", admin_broker.token)[0] == 200
    listed = subprocess.run([firehook_binary(), "admin", "-c", str(admin_broker.config_path), "token", "list"],
                            capture_output=True, text=True, timeout=15)
    assert listed.stdout.split() == ["scraper"], listed


def test_connections_over_the_limit_are_closed(start_broker, tmp_path):
    b = start_broker({"broker": {"state_dir": str(tmp_path / "st")}, "admin": {"port": 0, "max_connections": 2}})
    token = add_token(b, "t")
    host, port = b.listeners["admin"]
    held = [socket.create_connection((host, port), timeout=5) for _ in range(2)]
    time.sleep(0.3)
    extra = socket.create_connection((host, port), timeout=5)
    extra.settimeout(5)
    assert extra.recv(100) == b"", "the connection over admin.max_connections must be closed"
    for s in held:
        s.close()
    extra.close()
    deadline = time.monotonic() + 5
    while curl(b, "/healthz", token)[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_certificate_expiry_is_a_metric(start_broker, tmp_path):
    """The server certificate's notAfter, as Unix time, labelled with its listener and subject."""
    key, crt = tmp_path / "server.key", tmp_path / "server.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-days", "40", "-subj", "/CN=broker.example"],
                   check=True, capture_output=True)
    end = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-enddate"], capture_output=True, text=True,
                         check=True).stdout.strip().split("=", 1)[1]
    not_after = calendar.timegm(time.strptime(end, "%b %d %H:%M:%S %Y %Z"))
    b = start_broker({"broker": {"state_dir": str(tmp_path / "st")}, "admin": {"port": 0},
                      "listener": [{"name": "secure", "address": "127.0.0.1", "port": 0, "protocol": "mqtts",
                                    "allow_anonymous": True, "tls": {"cert": str(crt), "key": str(key)}}]})
    token = add_token(b, "scraper")
    deadline = time.monotonic() + 5
    while (r := curl(b, "/metrics", token))[0] == 401:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    got = samples(r[1])
    key_ = ("firehook_certificate_expiry_timestamp_seconds",
            frozenset({"listener": "secure", "kind": "server", "subject": "/CN=broker.example"}.items()))
    assert got.get(key_) == not_after, {k: v for k, v in got.items() if "certificate" in k[0]}
