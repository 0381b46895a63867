"""The authentication pipeline cannot be starved without credentials (issue 10). Password checks are
slow on purpose (Argon2id, about 0.1 s each on two workers), so a flood of CONNECTs with wrong
passwords must not make everybody else wait: the work for a connection that is gone is cancelled,
each peer address has its own bounded queue and the addresses are served in turn, and a client
without credentials never waits behind password hashing.

The flood comes from 127.0.0.2 (any 127/8 address reaches the broker on 127.0.0.1); the legitimate
client from 127.0.0.1. Raw sockets, so that the flood can close at once or keep its connections.
"""

import threading
import time

import pytest

from pahoclient import V5
from rawclient import CONNACK, PINGREQ, RawClient, connect_packet, fixed
from topics_helpers import PASSWORD, user_add

FLOOD_FROM = "127.0.0.2"
LOGIN_DEADLINE = 1.0  # seconds from TCP connect to CONNACK for a legitimate login during the flood


@pytest.fixture(scope="module")
def flood_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("flood-users") / "firehook.db"
    user_add(db, "device-1", ["device"])
    return db


@pytest.fixture
def flood_broker(start_broker, flood_db):
    return start_broker({
        "listener": [
            {"name": "users", "address": "127.0.0.1", "port": 0, "protocol": "mqtt", "auth": ["password"],
             "allow_anonymous": False},
            {"name": "mixed", "address": "127.0.0.1", "port": 0, "protocol": "mqtt", "auth": ["password"],
             "allow_anonymous": True},
        ],
        "auth": {"password": {"database": str(flood_db)}},
        # This file is about the authentication queue: its fairness is what protects honest logins
        # before the login tarpit and bans (test_bans.py) are triggered, or where they are turned off.
        # With them on, the flood's guesses of device-1 would be held and its address banned.
        "abuse": {"login_failures": 0, "ban_after_failures": 0},
    })


class Flood:
    """Sends CONNECTs with a wrong password from FLOOD_FROM until stopped, in one thread."""

    def __init__(self, port, mode):
        self.port = port
        self.mode = mode  # "close": close right after; "ping": CONNECT + PINGREQ, then close; "hold": keep
        self.sent = 0
        self.held = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        packet = connect_packet(V5, "", username="device-1", password=b"wrong guess")
        if self.mode == "ping":
            packet += fixed(PINGREQ, 0, b"")
        while not self.stop.is_set() and self.sent < 3000:
            try:
                r = RawClient("127.0.0.1", self.port, V5, timeout=10, source=(FLOOD_FROM, 0))
                r.send(packet)
            except OSError:
                continue
            self.sent += 1
            if self.mode == "hold":
                self.held.append(r)
                if len(self.held) >= 300:
                    break
            else:
                r.close()

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 5
        while self.sent < 200 and time.monotonic() < deadline:  # the broker has a backlog by now
            time.sleep(0.01)
        assert self.sent >= 100, f"the flood could send only {self.sent} CONNECTs"
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)
        for r in self.held:
            r.close()


def timed_login(port, **credentials):
    """Seconds from TCP connect to CONNACK (waiting up to 30 s), and the CONNACK reason (None when
    the broker closed the connection without one: the login timed out in its queue)."""
    start = time.monotonic()
    r = RawClient("127.0.0.1", port, V5, timeout=30)
    try:
        r.send(connect_packet(V5, "", **credentials))
        try:
            reason = r.expect(CONNACK, timeout=30).reason
        except AssertionError:
            reason = None
        return time.monotonic() - start, reason
    finally:
        r.close()


@pytest.mark.parametrize("mode", ["close", "ping", "hold"])
def test_legitimate_login_completes_in_under_a_second_during_a_flood(flood_broker, mode):
    """Closed right after the CONNECT (or after a further packet, which pauses reading), the flood's
    requests are cancelled; held open, they queue behind the address's bound, and the legitimate
    address is served in turn."""
    port = flood_broker.listeners["users"][1]
    with Flood(port, mode):
        times = []
        for _ in range(5):
            took, reason = timed_login(port, username="device-1", password=PASSWORD.encode())
            assert reason == 0, f"login after {took:.2f} s: CONNACK {reason}"
            times.append(took)
            time.sleep(0.2)
    assert max(times) < LOGIN_DEADLINE, f"logins took {[round(t, 2) for t in times]} s during the flood"


def test_client_without_credentials_never_waits_behind_password_hashing(flood_broker):
    """On a listener that admits anonymous clients and also checks passwords, the flood of wrong
    passwords is hashed on the pool; a client that sends no credentials is decided at once."""
    port = flood_broker.listeners["mixed"][1]
    with Flood(port, "hold"):
        times = []
        for _ in range(5):
            took, reason = timed_login(port)
            assert reason == 0, f"login after {took:.2f} s: CONNACK {reason}"
            times.append(took)
    assert max(times) < 0.5, f"anonymous logins took {[round(t, 2) for t in times]} s during the flood"


def test_a_full_queue_is_refused_at_once_and_counted(flood_broker, clients):
    """Held open, the flood fills its address's queue (32 by default); the CONNECTs beyond it are
    refused at once with 0x89 Server busy, counted in $SYS and logged."""
    port = flood_broker.listeners["users"][1]
    with Flood(port, "hold") as flood:
        deadline = time.monotonic() + 10
        while len(flood.held) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        busy = sum(r.expect(CONNACK, timeout=10).reason == 0x89 for r in flood.held[-50:])
        assert busy >= 40, f"only {busy} of the last 50 flood CONNECTs were refused as busy"
    refused = flood_broker.wait_for_event("auth_denied", reason_code="0x89", peer=FLOOD_FROM)
    assert "being authenticated" in refused["reason"], refused
    anon = clients(flood_broker, V5, listener="mixed")
    anon.subscribe("$SYS/broker/authentication/queue_full", 0)
    deadline = time.monotonic() + 15  # $SYS is published every 10 s
    while int(anon.expect(timeout=15).payload) < 40:
        assert time.monotonic() < deadline, "$SYS/broker/authentication/queue_full did not count the refusals"
