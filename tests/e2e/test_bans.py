"""Login tarpit, bans and client-id flapping (docs/hardening.md, "Password guessing", "Bans",
"Flapping client ids"), end to end: the real broker with a password listener, raw MQTT clients
bound to chosen loopback source addresses (127.0.0.2 guesses, 127.0.0.1 and 127.0.0.3 are honest),
`firehook ban` and curl on the admin endpoint.

Defaults are kept where the run time allows: login_failures = 10, login_delay_ms = 500 and
login_delay_max_ms = 4000. Shortened so that the file runs in about a minute: ban_after_failures
= 14 (the default 20 would add seven more 4 s waits), ban_time = 3 s (to see a ban expire),
flapping_connects = 5 and flapping_ban_time = 3 s.
"""

import json
import subprocess
import time
from pathlib import Path

import pytest

from conftest import firehook_binary, write_config
from rawclient import CONNACK, DISCONNECT, RawClient, V5, V311, connect_packet
from test_admin import curl
from test_auth_password import user_cmd

GUESSER = "127.0.0.2"
HONEST = "127.0.0.1"  # allowlisted
OTHER = "127.0.0.3"


@pytest.fixture
def ban_broker(start_broker, tmp_path):
    users = tmp_path / "users" / "firehook.db"
    user_cmd(users, "add", "dev1", password="right horse")
    user_cmd(users, "add", "dev2", password="other horse")
    state = tmp_path / "state"
    settings = {
        "broker": {"state_dir": str(state)},
        "admin": {"port": 0},
        "abuse": {"allowlist": [HONEST], "ban_after_failures": 14, "ban_time": 3, "flapping_connects": 5,
                  "flapping_ban_time": 3},
        # The connection accepted before the address's ban must outlive the 4 s hold of the guess
        # before it, so that the ban (not the CONNECT timeout, 5 s by default) is what closes it.
        "limits": {"connect_timeout": 30},
        "listener": [{"name": "default", "address": "127.0.0.1", "port": 0, "protocol": "mqtt",
                      "allow_anonymous": False, "auth": ["password"]}],
        "auth.password": {"database": str(users)},
    }
    cfg, _ = write_config(tmp_path, settings, name="for-cli.toml")
    p = subprocess.run([firehook_binary(), "admin", "-c", str(cfg), "token", "add", "ops"], capture_output=True,
                       text=True, timeout=15)
    assert p.returncode == 0, p
    b = start_broker(settings)
    b.token = p.stdout.strip()
    b.cli_config = cfg
    b.settings = settings
    return b


def login(broker, source, user, password, version=V5, client_id="c", keep=False, clean=True):
    """One CONNECT from `source`; (CONNACK reason or None when closed without one, seconds, client)."""
    r = RawClient(broker.host, broker.port, version, source=(source, 0))
    start = time.monotonic()
    r.send(connect_packet(version, client_id, clean=clean, username=user, password=password.encode()))
    if keep:
        p = r.recv(timeout=10)
        assert p.type == CONNACK, p
        return p.reason, time.monotonic() - start, r
    got = r.wait_closed(timeout=10)
    took = time.monotonic() - start
    return (got[0].reason if got and got[0].type == CONNACK else None), took, None


def ban_cli(broker, *args):
    return subprocess.run([firehook_binary(), "ban", "-c", str(broker.cli_config), *args], capture_output=True,
                          text=True, timeout=15)


def test_guessing_gets_slower_then_banned_while_honest_logins_are_not(ban_broker):
    b = ban_broker
    rc, honest_before, c = login(b, HONEST, "dev1", "right horse", keep=True, client_id="honest-1")
    assert rc == 0
    c.close()
    times = []
    pre = None
    for attempt in range(1, 15):
        if attempt == 14:
            pre = RawClient(b.host, b.port, V5, source=(GUESSER, 0))  # accepted before the ban
        rc, took, _ = login(b, GUESSER, "dev1", f"guess {attempt}", client_id=f"g{attempt}")
        assert rc == 0x86, (attempt, rc)
        times.append(took)
        if attempt == 13:
            # While the guesser is held: the same user from the allowlisted address, and another
            # user from another address, are answered at once.
            rc, honest_during, c = login(b, HONEST, "dev1", "right horse", keep=True, client_id="honest-2")
            assert rc == 0
            c.close()
            rc, other_during, c = login(b, OTHER, "dev2", "other horse", keep=True, client_id="other-1")
            assert rc == 0
            c.close()
    print(f"\nCONNACK times of the guesses: {[round(t, 2) for t in times]}")
    print(f"honest CONNACK: {honest_before:.3f}s before, {honest_during:.3f}s while guessing "
          f"(dev2 from {OTHER}: {other_during:.3f}s)")
    # Attempts 1..10 are answered as fast as the hash; 11..14 wait 0.5, 1, 2, 4 s first.
    assert max(times[:10]) < 0.5, times
    for held, delay in zip(times[10:], (0.5, 1.0, 2.0, 4.0)):
        assert delay <= held < delay + 1.5, times
    assert honest_during < 0.5 and other_during < 0.5
    delayed = b.events("login_delayed", peer=GUESSER)
    assert [e["delay_ms"] for e in delayed] == [500, 1000, 2000, 4000], delayed
    assert delayed[0]["count"] == 10 and delayed[0]["username"] == "dev1"
    ban = b.wait_for_event("ban", subject=GUESSER, change="added")
    assert ban["kind"] == "address" and ban["source"] == "login failures", ban
    # A connection accepted before the ban that has not sent its CONNECT is closed as the ban comes
    # into force (the bans are polled every 500 ms), without a byte: it cannot log in as anyone...
    assert pre.wait_closed(timeout=3) == []
    # ...a new one is closed at accept, before any byte: no CONNACK, even with the right password.
    rc, _, _ = login(b, GUESSER, "dev2", "other horse")
    assert rc is None
    refused = b.wait_for_event("connection_refused", peer=GUESSER, subject="ban")
    assert refused["decision"] == "deny" and "failed logins" in refused["reason"], refused
    # The ban (3 s here) expires: the address may log in again (as dev2: dev1's name is still tarpitted).
    b.wait_for_event("ban", subject=GUESSER, change="expired", timeout=10)
    rc, took, c = login(b, GUESSER, "dev2", "other horse", keep=True, client_id="after")
    assert rc == 0 and took < 0.5
    c.close()


def audit_records(broker, kind, **fields):
    """The broker's audit records of event `kind` with `fields` (none folded, unlike the log's)."""
    d = Path(broker.settings["broker"]["state_dir"]) / "audit"
    records = [json.loads(line) for f in sorted(d.glob("audit*.log"))
               for line in f.read_text().split("\n")[:-1] if line.strip()]
    return [r for r in records if r.get("event") == kind and all(r.get(k) == v for k, v in fields.items())]


def test_flapping_client_id_is_banned_for_a_while(ban_broker):
    b = ban_broker
    for i in range(5):
        rc, _, c = login(b, OTHER, "dev2", "other horse", keep=True, client_id="flappy", version=V311)
        assert rc == 0, i
        c.close()
    # Connections count when the broker sees them end (asynchronously): wait for the fifth.
    deadline = time.monotonic() + 10
    while len(audit_records(b, "client_disconnected", client_id="flappy")) < 5:
        assert time.monotonic() < deadline, audit_records(b, "client_disconnected", client_id="flappy")
        time.sleep(0.05)
    # After flapping_connects = 5 ended, the sixth is admitted, then disconnected once the ban is in force.
    rc, _, c = login(b, OTHER, "dev2", "other horse", keep=True, client_id="flappy")
    assert rc == 0
    p = c.recv(timeout=3)
    assert p.type == DISCONNECT and p.reason == 0x98, p
    rc, _, _ = login(b, OTHER, "dev2", "other horse", client_id="flappy", version=V311)
    assert rc == 0x05  # 3.1.1's Not authorized for 0x8A Banned
    e = b.wait_for_event("ban", subject="flappy", change="added")
    assert e["kind"] == "client_id" and e["source"] == "flapping", e
    denied = b.wait_for_event("auth_denied", client_id="flappy", subject="ban")
    assert denied["reason_code"] == "0x8A", denied
    b.wait_for_event("ban", subject="flappy", change="expired", timeout=10)
    rc, _, c = login(b, OTHER, "dev2", "other horse", keep=True, client_id="flappy")
    assert rc == 0
    c.close()


def test_another_identity_cannot_make_a_client_id_flap(ban_broker):
    """dev2 owns the (offline, persistent) session of client id "owned"; dev1's CONNECTs with that
    client id are refused as not its owner (3.1.1: 0x02), and do not count toward its flapping."""
    b = ban_broker
    rc, _, c = login(b, OTHER, "dev2", "other horse", keep=True, client_id="owned", version=V311, clean=False)
    assert rc == 0
    c.close()
    for i in range(8):
        rc, _, _ = login(b, OTHER, "dev1", "right horse", client_id="owned", version=V311)
        assert rc == 0x02, i
    rc, _, c = login(b, OTHER, "dev2", "other horse", keep=True, client_id="owned", version=V311, clean=False)
    assert rc == 0
    c.close()
    assert not b.events("ban", subject="owned")


def test_cli_and_admin_bans_disconnect_refuse_and_survive_a_restart(ban_broker, start_broker):
    b = ban_broker
    rc, _, victim = login(b, OTHER, "dev2", "other horse", keep=True, client_id="victim")
    assert rc == 0
    r = ban_cli(b, "add", "--client-id", "victim", "--for", "10m", "--reason", "stolen")
    assert r.returncode == 0 and "banned client_id victim" in r.stdout, r
    # The connected client is disconnected with 0x98 Administrative action within a second or so.
    p = victim.recv(timeout=3)
    assert p.type == DISCONNECT and p.reason == 0x98, p
    assert "victim" in ban_cli(b, "list").stdout
    assert ban_cli(b, "add", "10.0.0.0/40").returncode == 1
    assert ban_cli(b, "add", "--username", "x", "--for", "soon").returncode == 1
    # The admin endpoint: POST, GET, bad input, DELETE.
    t = b.token
    body = json.dumps({"kind": "username", "subject": "dev1", "for": "1h", "reason": "lost device"})
    status, text = admin(b, "POST", "/bans", "not json")
    assert status == 400 and "error" in json.loads(text)
    status, text = admin(b, "POST", "/bans", body)
    assert status == 201 and json.loads(text)["source"] == "admin ops", text
    status, text = admin(b, "POST", "/bans", json.dumps({"kind": "device", "subject": "x"}))
    assert status == 400 and "kind" in json.loads(text)["error"]
    status, text = admin(b, "POST", "/bans", json.dumps({"kind": "certificate", "subject": "AB:CD"}))
    assert status == 400 and "SHA-256 fingerprint" in json.loads(text)["error"], text
    # A certificate's fingerprint as openssl prints it is stored in lower case, without colons, and
    # removed by either spelling.
    printed = ":".join(["AB"] * 32)
    status, text = admin(b, "POST", "/bans", json.dumps({"kind": "certificate", "subject": printed}))
    assert status == 201 and json.loads(text)["subject"] == "ab" * 32, text
    assert admin(b, "DELETE", "/bans/certificate/" + printed)[0] == 200
    status, text = curl(b, "/bans", t)
    listed = {(x["kind"], x["subject"]) for x in json.loads(text)["bans"]}
    assert {("client_id", "victim"), ("username", "dev1")} <= listed, text
    rc, _, _ = login(b, OTHER, "dev1", "right horse", client_id="d1")
    assert rc == 0x8A  # banned by user name, before its password is checked
    assert curl(b, "/bans", None)[0] == 401
    # A restart keeps them.
    b.stop()
    b2 = start_broker(b.settings)
    rc, _, _ = login(b2, OTHER, "dev2", "other horse", client_id="victim")
    assert rc == 0x8A
    b2.token, b2.cli_config = t, b.cli_config
    status, _ = admin(b2, "DELETE", "/bans/username/dev1")
    assert status == 200
    assert admin(b2, "DELETE", "/bans/username/dev1")[0] == 404
    assert ban_cli(b2, "remove", "--client-id", "victim").returncode == 0
    b2.wait_for_event("ban", subject="victim", change="removed", timeout=5)
    rc, _, c = login(b2, OTHER, "dev2", "other horse", keep=True, client_id="victim")
    assert rc == 0
    c.close()
    assert ban_cli(b2, "list").stdout == ""


def admin(broker, method, path, body=None):
    host, port = broker.listeners["admin"]
    cmd = ["curl", "-s", "-S", "-o", "-", "-w", "\n%{http_code}", "-X", method, f"http://{host}:{port}{path}",
           "-H", f"Authorization: Bearer {broker.token}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", body]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=15)
    text, _, status = p.stdout.rpartition("\n")
    return int(status), text
