"""Budgets per peer address, enforced when a TCP connection is accepted and before its TLS handshake
(issue 14, "Abuse control before the expensive work"; docs/hardening.md, "Connections per address").

Every test runs a TLS listener that admits anonymous clients, so that a refusal at accept can be told
from a TLS listener waiting for a ClientHello. Linux routes all of 127/8 to loopback: the abusive
clients connect from 127.0.0.1 (or 127.0.0.3 and up), the honest one from 127.0.0.2, each binding
its socket's source address.
"""

import resource
import selectors
import socket
import ssl
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pki import pki  # noqa: F401  (pki is a fixture)
from rawclient import CONNACK, TlsRawClient, connect_packet

HONEST_FROM = "127.0.0.2"
CONNECT_TIMEOUT = 5.0  # the defaults (docs/configuration.md)
TLS_HANDSHAKE_TIMEOUT = 10.0
MAX_PENDING_PER_ADDRESS = 500
TICK = 0.1  # the broker looks at its connect deadlines every 100 ms
SLACK = 1.5  # a loaded 2-core machine running a sanitizer build


def tls_listener(pki):
    return {"name": "tls", "address": "127.0.0.1", "port": 0, "protocol": "mqtts", "allow_anonymous": True,
            "auth": [], "tls": {"cert": str(pki.server.cert), "key": str(pki.server.key),
                                "client_certificates": "none"}}


def budget_broker(start_broker, pki, abuse=None, **overrides):
    config = {"listener": [tls_listener(pki)], "broker": {"sys_interval": 1}}
    if abuse is not None:
        config["abuse"] = abuse
    config.update(overrides)
    return start_broker(config)


@pytest.fixture(autouse=True)
def enough_descriptors():
    """2,200 sockets here; the broker (a child) inherits the limit too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def context(pki):
    return ssl.create_default_context(cafile=str(pki.ca))


def tcp(port, source="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def honest_connack(port, ctx):
    """Seconds from connect() to a successful CONNACK, from HONEST_FROM over TLS."""
    start = time.monotonic()
    s = tcp(port, HONEST_FROM)
    c = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    try:
        c.sendall(connect_packet(5, ""))
        data = b""
        while len(data) < 4:
            chunk = c.recv(64)
            assert chunk, "the broker closed the honest client's connection"
            data += chunk
        took = time.monotonic() - start
        assert data[0] >> 4 == CONNACK and data[3] == 0, f"honest client: {data!r}"
        c.sendall(bytes([0xE0, 0]))  # DISCONNECT
        return took
    finally:
        c.close()


def median_connack(port, ctx, n=15):
    times = []
    for _ in range(n):
        times.append(honest_connack(port, ctx))
        time.sleep(0.05)
    return statistics.median(times), times


def closed_at_once(s, within=1.0):
    """True when the broker closes `s` within `within` seconds without sending anything."""
    s.settimeout(within)
    try:
        data = s.recv(1)
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    assert data == b"", f"the broker sent {data!r} to a connection over budget"
    return True


def refused_before_tls(port, pki, source):
    """A connection from `source` that the broker closes at once: with nothing sent, a TLS listener
    would wait for the ClientHello; and a handshake on such a connection fails."""
    s = tcp(port, source)
    try:
        if not closed_at_once(s):
            return False
    finally:
        s.close()
    s = tcp(port, source)
    try:
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            context(pki).wrap_socket(s, server_hostname="127.0.0.1")
    finally:
        s.close()
    return True


class Watch:
    """Sockets watched for the broker closing them, from one thread: each socket's start time and
    the time it was seen closed. The slow ones (TLS, non-blocking) are sent their next CONNECT
    byte every second."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.started = {}  # socket -> when its clock started (connect, or handshake done)
        self.closed = {}  # socket -> when the broker closed it
        self.slow = {}  # socket -> bytes of CONNECT still to send
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def add(self, s, started, dribble=None):
        s.setblocking(False)
        with self.lock:
            self.started[s] = started
            if dribble is not None:
                self.slow[s] = dribble
            self.sel.register(s, selectors.EVENT_READ)

    def _gone(self, s, now):
        with self.lock:
            self.closed[s] = now
            self.slow.pop(s, None)
            self.sel.unregister(s)
        s.close()

    def _look(self, s, now):
        try:
            data = s.recv(4096)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return  # TLS records that were not data (session tickets)
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self._gone(s, now)

    def _run(self):
        next_byte = time.monotonic() + 1
        while not self.stop.is_set():
            with self.lock:
                empty = not self.started.keys() - self.closed.keys()
            if empty:
                time.sleep(0.01)
                continue
            for key, _ in self.sel.select(timeout=max(0.0, min(0.05, next_byte - time.monotonic()))):
                self._look(key.fileobj, time.monotonic())
            now = time.monotonic()
            if now >= next_byte:
                next_byte += 1
                with self.lock:
                    slow = list(self.slow.items())
                for s, rest in slow:
                    try:
                        s.send(rest[:1])
                        self.slow[s] = rest[1:]
                    except (ssl.SSLWantWriteError, BlockingIOError):
                        pass
                    except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                        self._gone(s, now)

    def open_count(self, which):
        with self.lock:
            return sum(1 for s in which if s not in self.closed)

    def wait_all_closed(self, which, timeout):
        deadline = time.monotonic() + timeout
        while self.open_count(which) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.open_count(which)

    def lifetimes(self, which):
        with self.lock:
            return [self.closed[s] - self.started[s] for s in which]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
        for s in list(self.started):
            s.close()


def sys_values(port, pki, topics, until, timeout=10.0):
    """The $SYS/broker/... values of `topics` once `until(values)` holds (sys_interval = 1). Read
    from 127.0.0.1, after a test's connections: retried while the broker has yet to see them end."""
    for attempt in range(10):
        c = None
        try:
            c = TlsRawClient("127.0.0.1", port, context(pki), 5)
            c.connect()
            break
        except (ssl.SSLError, OSError, AssertionError):
            if c is not None:
                c.close()
            assert attempt < 9, "no connection for reading $SYS"
            time.sleep(0.2)
    try:
        c.subscribe([("$SYS/broker/connections/#", 0)])
        values, deadline = {}, time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = c.recv_or_none(max(0.01, deadline - time.monotonic()))
            if p is None:
                break
            if p.topic is not None:
                values[p.topic] = int(p.payload)
            if set(topics) <= set(values) and until(values):
                return values
        raise AssertionError(f"$SYS within {timeout}s: {values}")
    finally:
        c.close()


def test_idle_and_slow_connections_do_not_delay_an_honest_client(start_broker, pki):
    """With the default budgets: 200 connections that send their CONNECT one byte a second and 2,000
    that never send anything, all from 127.0.0.1. The honest client's CONNACK (from 127.0.0.2) takes
    less than twice as long as without them; the connections over the address's pending budget are
    closed at once; the others are closed at their timeouts (the CONNECT timeout after the TLS
    handshake, the TLS handshake timeout), which bytes dribbling in do not extend."""
    b = budget_broker(start_broker, pki)
    port, ctx = b.listeners["tls"][1], context(pki)
    honest_connack(port, ctx)  # warm up
    before, before_all = median_connack(port, ctx)

    slow_connect = connect_packet(5, "slowloris-0")

    def handshake(_):
        s = ctx.wrap_socket(tcp(port), server_hostname="127.0.0.1")
        watch.add(s, time.monotonic(), dribble=slow_connect)  # handshake done: the CONNECT timeout runs
        return s

    with Watch() as watch:
        # The honest client is measured while all of them are held: within the CONNECT timeout of
        # the first slow handshake, so the handshakes go in parallel (Python releases the GIL in them).
        slow_start = time.monotonic()
        with ThreadPoolExecutor(max_workers=16) as pool:
            slow = list(pool.map(handshake, range(200)))
        slow_took = time.monotonic() - slow_start
        flood_start = time.monotonic()
        idle = []
        for _ in range(2000):
            s = tcp(port)
            watch.add(s, time.monotonic())
            idle.append(s)
        flood_took = time.monotonic() - flood_start
        time.sleep(0.3)  # the broker has accepted and sorted them
        held_slow = watch.open_count(slow)
        held_idle = watch.open_count(idle)
        during, during_all = median_connack(port, ctx)
        still_slow = watch.open_count(slow)
        still_idle = watch.open_count(idle)
        print(f"\nhonest CONNACK median: {before * 1000:.1f} ms before, {during * 1000:.1f} ms during "
              f"(before {[round(t * 1000, 1) for t in before_all]}, during {[round(t * 1000, 1) for t in during_all]})")
        print(f"held: {held_slow} slow (handshakes took {slow_took:.2f} s), {held_idle} idle of 2000 "
              f"(opened in {flood_took:.2f} s); "
              f"still held after the honest connects: {still_slow} slow, {still_idle} idle")

        assert held_slow == 200, "a slow connection was closed before its CONNECT timeout"
        assert still_slow == 200, "the honest connects were not measured while the slow connections were held"
        assert held_idle == MAX_PENDING_PER_ADDRESS - 200, "the address's pending budget should hold the rest"
        assert still_idle == held_idle
        assert during <= 2 * before, (
            f"honest CONNACK {during * 1000:.1f} ms during the flood, {before * 1000:.1f} ms before")

        left = watch.wait_all_closed(slow, CONNECT_TIMEOUT + SLACK)
        assert left == 0, f"{left} slow connections still open {CONNECT_TIMEOUT + SLACK} s after their handshake"
        left = watch.wait_all_closed(idle, TLS_HANDSHAKE_TIMEOUT + SLACK)
        assert left == 0, f"{left} idle connections still open {TLS_HANDSHAKE_TIMEOUT + SLACK} s after connect"

        slow_lives = watch.lifetimes(slow)
        idle_lives = sorted(watch.lifetimes(idle))
        refused, timed_out = idle_lives[:2000 - held_idle], idle_lives[2000 - held_idle:]
        print(f"slow connections closed {min(slow_lives):.2f}..{max(slow_lives):.2f} s after their TLS handshake "
              f"(connect_timeout {CONNECT_TIMEOUT:.0f} s)")
        print(f"idle connections over budget closed {min(refused):.3f}..{max(refused):.3f} s after connect; "
              f"the others {min(timed_out):.2f}..{max(timed_out):.2f} s "
              f"(tls_handshake_timeout {TLS_HANDSHAKE_TIMEOUT:.0f} s)")
        assert CONNECT_TIMEOUT - TICK <= min(slow_lives) and max(slow_lives) <= CONNECT_TIMEOUT + SLACK
        assert max(refused) < 2.0, "connections over budget are closed at once"
        assert TLS_HANDSHAKE_TIMEOUT - TICK <= min(timed_out) <= max(timed_out) <= TLS_HANDSHAKE_TIMEOUT + SLACK

    e = b.wait_for_event("connection_refused", subject="abuse.max_pending_per_address")
    assert (e["peer"], e["decision"]) == ("127.0.0.1", "deny"), e
    assert e["reason"] == "limit reached: 500 connections from this address not yet authenticated", e
    assert b.events("connection_refused", subject="limits.connect_timeout", reason="no CONNECT in time")
    assert b.events("connection_refused", subject="limits.tls_handshake_timeout")
    values = sys_values(port, pki, ["$SYS/broker/connections/refused/pending_per_address",
                                    "$SYS/broker/connections/refused/rate_per_address",
                                    "$SYS/broker/connections/pending"],
                        lambda v: v["$SYS/broker/connections/refused/pending_per_address"] >= 2000 - held_idle
                        and v["$SYS/broker/connections/pending"] == 0)
    assert values["$SYS/broker/connections/refused/rate_per_address"] == 0, values


def refusals_counted(b, port, pki, counter, subject):
    """The $SYS `counter` counts every refusal of `subject`: at least the test's two (the plain
    socket and the TLS attempt of refused_before_tls), and the ones of sys_values' own connection
    if it came while the test's held connections were still counted (the audit log has a record
    of each)."""
    sys_values(port, pki, [counter], lambda v: v[counter] >= 2 and v[counter] == len(
        b.audit_records("connection_refused", subject=subject)))


BUDGETS = {
    # budget: ([abuse] settings, connections from 127.0.0.3 that spend it, the $SYS counter)
    "max_connections_per_address": ({"max_connections_per_address": 2}, "authenticated", 2, "connections_per_address"),
    "connection_rate_per_address": ({"connection_rate_per_address": 1, "connection_burst_per_address": 3},
                                    "closed", 3, "rate_per_address"),
    "max_pending_per_address": ({"max_pending_per_address": 2}, "idle", 2, "pending_per_address"),
    "max_pending_connections": ({"max_pending_connections": 3}, "idle", 3, "pending"),
}


def authenticated(port, ctx, source):
    """A TLS connection from `source` that has its successful CONNACK."""
    c = ctx.wrap_socket(tcp(port, source), server_hostname="127.0.0.1")
    c.sendall(connect_packet(5, ""))
    data = c.recv(64)
    assert data[:1] == bytes([CONNACK << 4]) and data[3] == 0, data
    return c


@pytest.mark.parametrize("budget", list(BUDGETS))
def test_a_connection_over_budget_is_closed_before_tls_counted_and_logged(start_broker, pki, budget):
    abuse, kind, spend, counter = BUDGETS[budget]
    counter = f"$SYS/broker/connections/refused/{counter}"
    b = budget_broker(start_broker, pki, abuse)
    port, ctx = b.listeners["tls"][1], context(pki)
    held = []
    try:
        for _ in range(spend):
            if kind == "authenticated":  # open connections count, authenticated or not
                held.append(authenticated(port, ctx, "127.0.0.3"))
            elif kind == "idle":  # pending: the TLS handshake not even begun
                held.append(tcp(port, "127.0.0.3"))
            else:  # the rate counts new connections, however short
                tcp(port, "127.0.0.3").close()
        # Each shard accepts from its own queue (SO_REUSEPORT): those connections must have been
        # accepted before the next one arrives, or the other shard could take the next one first.
        time.sleep(0.3)
        # max_pending_connections is the whole broker's: any other address is refused too
        source = "127.0.0.4" if budget == "max_pending_connections" else "127.0.0.3"
        assert refused_before_tls(port, pki, source), f"{budget}: a connection over budget was not closed at once"
        e = b.wait_for_event("connection_refused", subject=f"abuse.{budget}")
        assert (e["peer"], e["decision"], e["listener"]) == (source, "deny", "tls"), e
        assert e["reason"].startswith("limit reached: "), e
        if budget != "max_pending_connections":
            honest_connack(port, ctx)  # another address has a budget of its own
    finally:
        for c in held:
            c.close()
    if budget == "connection_rate_per_address":
        time.sleep(1.1)  # one new token
        s = tcp(port, "127.0.0.3")
        assert not closed_at_once(s, 0.3), "the bucket did not refill"
        s.close()
    refusals_counted(b, port, pki, counter, f"abuse.{budget}")


def test_the_pending_gauge_counts_connections_until_their_connack(start_broker, pki):
    b = budget_broker(start_broker, pki)
    port, ctx = b.listeners["tls"][1], context(pki)
    idle = [tcp(port, "127.0.0.3") for _ in range(5)]
    handshaken = [ctx.wrap_socket(tcp(port, "127.0.0.3"), server_hostname="127.0.0.1") for _ in range(2)]
    connected = TlsRawClient("127.0.0.1", port, ctx, 5)
    connected.connect()
    try:
        # the $SYS reader itself is authenticated by the time it reads
        sys_values(port, pki, ["$SYS/broker/connections/pending"], lambda v: v["$SYS/broker/connections/pending"] == 7)
    finally:
        for s in idle + handshaken:
            s.close()
        connected.close()
    sys_values(port, pki, ["$SYS/broker/connections/pending"], lambda v: v["$SYS/broker/connections/pending"] == 0)


def test_an_allowlisted_address_is_not_held_to_the_per_address_budgets(start_broker, pki):
    """A gateway behind NAT: its address is in [abuse] allowlist, and it opens more connections,
    faster and longer unauthenticated, than the per-address budgets allow anybody else."""
    tight = {"max_connections_per_address": 2, "connection_rate_per_address": 1, "connection_burst_per_address": 2,
             "max_pending_per_address": 2}
    b = budget_broker(start_broker, pki, dict(tight, allowlist=["127.0.0.5/32"]))
    port, ctx = b.listeners["tls"][1], context(pki)
    gateway = [tcp(port, "127.0.0.5") for _ in range(10)]
    try:
        for s in gateway:
            assert not closed_at_once(s, 0.2), "an allowlisted connection was refused"
        other = [tcp(port, "127.0.0.6") for _ in range(3)]
        # whichever the shards (each accepting from its own queue) took last
        assert sorted(closed_at_once(s, 0.5) for s in other) == [False, False, True]
        for s in other:
            s.close()
    finally:
        for s in gateway:
            s.close()
    e = b.wait_for_event("connection_refused", peer="127.0.0.6")
    assert e["subject"] in ("abuse.max_pending_per_address", "abuse.max_connections_per_address"), e
    assert not b.events("connection_refused", peer="127.0.0.5")
    assert honest_connack(port, ctx) > 0


def test_a_tls_handshake_sent_a_byte_a_second_is_closed_at_the_handshake_timeout(start_broker, pki):
    b = budget_broker(start_broker, pki, limits={"tls_handshake_timeout": 2})
    port = b.listeners["tls"][1]
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context(pki).wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    s = tcp(port)
    start = time.monotonic()
    try:
        for i in range(len(hello)):
            s.sendall(hello[i:i + 1])
            if closed_at_once(s, 1.0):
                break
        took = time.monotonic() - start
    finally:
        s.close()
    print(f"\nClientHello sent a byte a second: closed after {took:.2f} s (tls_handshake_timeout 2 s)")
    assert 2 - TICK <= took <= 2 + SLACK
    e = b.wait_for_event("connection_refused", subject="limits.tls_handshake_timeout")
    assert e["reason"] == "TLS handshake not finished in time", e


def test_the_addresses_of_one_network_share_its_budgets(start_broker, pki):
    """127.0.0.x is one IPv4 /24 (network_prefix_ipv4 = 24): connections from different addresses of
    it count together; 127.0.1.x is another network."""
    counter = "$SYS/broker/connections/refused/pending_per_network"
    b = budget_broker(start_broker, pki, {"max_pending_per_network": 3})
    port = b.listeners["tls"][1]
    held = [tcp(port, f"127.0.0.{10 + i}") for i in range(3)]  # three addresses, one pending each
    try:
        time.sleep(0.3)  # accepted by whichever shard
        assert refused_before_tls(port, pki, "127.0.0.20"), "a fourth address of the network was admitted"
        e = b.wait_for_event("connection_refused", subject="abuse.max_pending_per_network")
        assert (e["peer"], e["reason"]) == ("127.0.0.20", "limit reached: 3 connections from this network "
                                                          "not yet authenticated"), e
        other = tcp(port, "127.0.1.1")
        assert not closed_at_once(other, 0.3), "another network was refused"
        other.close()
    finally:
        for s in held:
            s.close()
    refusals_counted(b, port, pki, counter, "abuse.max_pending_per_network")


def test_connections_over_max_connections_are_counted(start_broker, pki):
    counter = "$SYS/broker/connections/refused/max_connections"
    b = budget_broker(start_broker, pki, limits={"max_connections": 2})
    port = b.listeners["tls"][1]
    held = [tcp(port, "127.0.0.3") for _ in range(2)]
    try:
        time.sleep(0.3)
        assert refused_before_tls(port, pki, "127.0.0.4")
        assert b.wait_for_event("connection_refused", subject="limits.max_connections")
    finally:
        for s in held:
            s.close()
    refusals_counted(b, port, pki, counter, "limits.max_connections")
