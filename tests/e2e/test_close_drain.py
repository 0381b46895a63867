"""A connection the broker ends with a reason code ends so that the client can read it (issue 12).

The broker writes its last packet (here a DISCONNECT 0x93, Receive Maximum exceeded), shuts its
sending side (TCP FIN; under TLS a close_notify first), and reads and throws away what the client
still sends until the client closes, for a bounded time, before it closes the socket. A client that
is still writing when it is disconnected therefore sees its writes succeed, then reads the
DISCONNECT and a clean end of stream: not "broken pipe" or "connection reset", which a socket
closed with unread input would give it.

The clients are raw sockets (rawclient.py) that tell how the stream ended: "eof" (TCP FIN, and
under TLS a close_notify before it: the TLS socket does not suppress a ragged EOF), "reset", or the
TLS error.
"""

import ssl
import time

import pytest

from pahoclient import V5, unique
from pki import pki  # noqa: F401  (pki is a fixture)
from rawclient import DISCONNECT, PUBLISH, Closed, RawClient, publish_packet
from test_tls import AUTH, TlsFiles, client_context, tls_listener

RECEIVE_MAXIMUM_EXCEEDED = 0x93
MAX_INFLIGHT = 8
# What the client goes on writing once it has gone past the window: as much as a busy client might
# have queued (well under the broker's 1 MiB drain bound), over a time well under its 2 s.
BURST_BYTES = 640 * 1024
BURST_SECONDS = 0.5


class EndWatchingClient(RawClient):
    """A RawClient, optionally over TLS, whose `ending` also tells a TLS error apart."""

    def __init__(self, host, port, context=None, server_hostname=None):
        super().__init__(host, port, V5)
        if context is not None:
            # A TCP FIN without a close_notify is an error here, not an end: neither the socket
            # (suppress_ragged_eofs) nor OpenSSL (Python's default contexts ignore it) pass it over.
            context.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
            self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname or host,
                                            suppress_ragged_eofs=False)

    def _fill(self, deadline):
        try:
            super()._fill(deadline)
        except ssl.SSLError as e:
            self.ending = f"TLS error: {e}"
            raise Closed from None

    def read_to_end(self, timeout=10.0):
        """The packets read until the stream ended (self.ending says how); the socket stays open."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            try:
                got.append(self._read(deadline))
            except Closed:
                return got
            except TimeoutError:
                raise AssertionError(f"the broker did not end the stream within {timeout}s; read {got!r}") from None


def flood_past_receive_maximum(c):
    """QoS 2 PUBLISHes never released, past the broker's Receive Maximum and without reading its
    PUBRECs [MQTT-3.3.4-9]; then more of them, in a burst, as a client with a backlog would.
    Returns the write error the client saw, or None."""
    try:
        c.send(b"".join(publish_packet(V5, "drain/t", b"x", 2, pid=c.pid()) for _ in range(MAX_INFLIGHT + 2)))
        chunk = b"".join(publish_packet(V5, "drain/t", b"y" * 1000, 2, pid=c.pid()) for _ in range(16))
        sent, deadline = 0, time.monotonic() + BURST_SECONDS
        while sent < BURST_BYTES and time.monotonic() < deadline:
            c.send(chunk)
            sent += len(chunk)
            time.sleep(BURST_SECONDS * len(chunk) / BURST_BYTES / 2)
    except OSError as e:  # BrokenPipeError, ConnectionResetError, ssl.SSLError
        return e
    return None


def check_disconnect_is_read(c):
    write_error = flood_past_receive_maximum(c)
    got = c.read_to_end()
    assert write_error is None, f"the client's writes failed: {write_error!r}; it read {got!r}"
    assert all(p.type != PUBLISH for p in got), got
    assert got and got[-1].type == DISCONNECT, f"no DISCONNECT read; the stream ended by {c.ending}: {got!r}"
    assert got[-1].reason == RECEIVE_MAXIMUM_EXCEEDED, f"DISCONNECT {got[-1]!r}"
    assert c.ending == "eof", f"after the DISCONNECT the stream ended by {c.ending}, not a clean end"


@pytest.fixture
def tls_drain_broker(start_broker, tmp_path, pki):  # noqa: F811
    files = TlsFiles(tmp_path / "tls", pki)
    return start_broker({"listener": [tls_listener(files)], "auth": AUTH,
                         "limits": {"max_inflight": MAX_INFLIGHT}})


def test_flood_past_receive_maximum_reads_disconnect_0x93_over_tcp(start_broker):
    b = start_broker({"limits": {"max_inflight": MAX_INFLIGHT}})
    c = EndWatchingClient(b.host, b.port)
    try:
        c.connect(client_id=unique("flood"))
        check_disconnect_is_read(c)
    finally:
        c.close()


@pytest.mark.parametrize("tls_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["1.2", "1.3"])
def test_flood_past_receive_maximum_reads_disconnect_0x93_over_tls(tls_drain_broker, pki, tls_version):  # noqa: F811
    ctx = client_context(pki, pki.clients["device-1"], version=tls_version)
    host, port = tls_drain_broker.listeners["tls"]
    c = EndWatchingClient(host, port, ctx)
    try:
        c.connect(client_id="device-1")
        check_disconnect_is_read(c)
    finally:
        c.close()


def test_a_client_that_stays_cannot_hold_the_socket(start_broker):
    """The drain is bounded: a client that neither closes nor stops writing after its DISCONNECT
    has its socket closed by the broker within the bound (2 s; generous margin for a slow build)."""
    b = start_broker({"limits": {"max_inflight": MAX_INFLIGHT}})
    c = EndWatchingClient(b.host, b.port)
    try:
        c.connect(client_id=unique("stay"))
        c.send(b"".join(publish_packet(V5, "drain/t", b"x", 2, pid=c.pid()) for _ in range(MAX_INFLIGHT + 1)))
        got = c.read_to_end()  # up to the broker's FIN; the socket is still open for writing
        assert got and got[-1].type == DISCONNECT and got[-1].reason == RECEIVE_MAXIMUM_EXCEEDED, got
        started = time.monotonic()
        deadline = started + 10.0
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            while time.monotonic() < deadline:
                c.sock.sendall(b"\x00" * 100)  # a trickle: keeps the drain busy, never ends it
                time.sleep(0.05)
        assert time.monotonic() - started < 8.0
    finally:
        c.close()
