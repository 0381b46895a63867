"""An MQTT client on a plain socket, for what paho cannot do in a test: send packets that are odd or
malformed on purpose, hold back acknowledgements, and see exactly what the broker put on the wire
(DUP flags, packet identifiers, topic aliases, reason codes). Properties are encoded and decoded by
paho's `Properties` class, so that part of the codec is not ours either.

Wire formats: MQTT 3.1.1 section 2 and MQTT 5.0 section 2 (fixed header, Variable Byte Integer,
UTF-8 strings with a two-byte length).
"""

import socket
import ssl
import struct
import time
from dataclasses import dataclass, field

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15
NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
         8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
         14: "DISCONNECT", 15: "AUTH"}

V31, V311, V5 = 3, 4, 5

TIMEOUT = 5.0


def varint(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def binary(b):
    b = b.encode("utf-8") if isinstance(b, str) else bytes(b)
    return struct.pack("!H", len(b)) + b


def fixed(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


def props_bytes(packet_type, props):
    """props: dict of paho property names (e.g. "TopicAlias") to values; lists for repeatable ones."""
    p = Properties(packet_type)
    for name, value in (props or {}).items():
        if isinstance(value, list):
            for item in value:
                setattr(p, name, item)
        else:
            setattr(p, name, value)
    return p.pack()


def props_dict(p):
    """A paho Properties object (or None) as a dict of the properties present."""
    if p is None:
        return {}
    out = {}
    for name in p.names:
        key = name.replace(" ", "")
        if hasattr(p, key):
            out[key] = getattr(p, key)
    return out


def parse_props(packet_type, buf):
    p, used = Properties(packet_type).unpack(buf)
    return props_dict(p), used


@dataclass
class Will:
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    props: dict = None


def connect_packet(version=V5, client_id="", clean=True, keepalive=60, props=None, will=None,
                   username=None, password=None, protocol_name=None):
    name = protocol_name or ("MQIsdp" if version == V31 else "MQTT")
    flags = 0x02 if clean else 0
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = utf8(name) + bytes([version, flags]) + struct.pack("!H", keepalive)
    if version == V5:
        body += props_bytes(PacketTypes.CONNECT, props)
    body += utf8(client_id)
    if will is not None:
        if version == V5:
            body += props_bytes(PacketTypes.WILLMESSAGE, will.props)
        body += utf8(will.topic) + binary(will.payload)
    if username is not None:
        body += utf8(username)
    if password is not None:
        body += binary(password)
    return fixed(CONNECT, 0, body)


def publish_packet(version, topic, payload=b"", qos=0, retain=False, dup=False, pid=None, props=None):
    flags = (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = utf8(topic)
    if qos:
        body += struct.pack("!H", pid)
    if version == V5:
        body += props_bytes(PacketTypes.PUBLISH, props)
    payload = payload.encode() if isinstance(payload, str) else bytes(payload)
    return fixed(PUBLISH, flags, body + payload)


def subscribe_packet(version, pid, filters, props=None):
    """filters: list of (filter, options byte); for 3.1.1 the options byte is the requested QoS."""
    body = struct.pack("!H", pid)
    if version == V5:
        body += props_bytes(PacketTypes.SUBSCRIBE, props)
    for f, opts in filters:
        body += utf8(f) + bytes([opts])
    return fixed(SUBSCRIBE, 0x02, body)


def sub_options(qos=0, no_local=False, retain_as_published=False, retain_handling=0):
    return qos | (0x04 if no_local else 0) | (0x08 if retain_as_published else 0) | (retain_handling << 4)


def unsubscribe_packet(version, pid, filters, props=None):
    body = struct.pack("!H", pid)
    if version == V5:
        body += props_bytes(PacketTypes.UNSUBSCRIBE, props)
    for f in filters:
        body += utf8(f)
    return fixed(UNSUBSCRIBE, 0x02, body)


def ack_packet(ptype, pid, reason=None):
    """PUBACK, PUBREC, PUBREL or PUBCOMP; a reason code is added (5.0) only when given."""
    body = struct.pack("!H", pid)
    if reason is not None:
        body += bytes([reason])
    return fixed(ptype, 0x02 if ptype == PUBREL else 0, body)


def disconnect_packet(version, reason=None, props=None):
    if version != V5 or (reason is None and not props):
        return fixed(DISCONNECT, 0, b"")
    body = bytes([reason or 0])
    if props:
        body += props_bytes(PacketTypes.DISCONNECT, props)
    return fixed(DISCONNECT, 0, body)


PINGREQ_PACKET = bytes([PINGREQ << 4, 0])


@dataclass
class Packet:
    type: int
    flags: int
    body: bytes
    # parsed fields, filled in as they apply
    reason: int = None          # CONNACK code, acks, DISCONNECT
    session_present: bool = None
    props: dict = field(default_factory=dict)
    pid: int = None
    codes: list = None          # SUBACK / UNSUBACK
    topic: str = None           # PUBLISH, after alias resolution
    wire_topic: str = None      # PUBLISH, as on the wire (may be "" when an alias is used)
    payload: bytes = None
    qos: int = None
    retain: bool = None
    dup: bool = None

    @property
    def name(self):
        return NAMES.get(self.type, f"type {self.type}")

    def __repr__(self):
        fields = [self.name]
        for k in ("reason", "session_present", "pid", "codes", "topic", "payload", "qos", "retain", "dup"):
            v = getattr(self, k)
            if v is not None:
                fields.append(f"{k}={v!r}")
        if self.props:
            fields.append(f"props={self.props!r}")
        return "<" + " ".join(fields) + ">"


class Closed(Exception):
    pass


class RawClient:
    """One TCP connection. Packets from the broker are parsed; aliases it assigns are resolved."""

    def __init__(self, host, port, version=V5, timeout=TIMEOUT, source=None):
        """`source`: the local (address, port) to connect from, e.g. ("127.0.0.2", 0)."""
        self.version = version
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=source)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.aliases = {}
        self.closed = False
        self.next_pid = 1
        self.ending = None  # how the broker's side ended: "eof" or "reset" (once Closed was raised)

    # -- sending

    def send(self, data):
        self.sock.sendall(data)

    def pid(self):
        p = self.next_pid
        self.next_pid = p % 65535 + 1
        return p

    def connect(self, client_id="", clean=True, keepalive=60, props=None, will=None, expect_rc=0, **kw):
        self.send(connect_packet(self.version, client_id, clean, keepalive, props, will, **kw))
        ack = self.expect(CONNACK)
        if expect_rc is not None:
            assert ack.reason == expect_rc, f"CONNACK {ack!r}, expected reason {expect_rc:#04x}"
        return ack

    def subscribe(self, filters, props=None, pid=None):
        """filters: a filter string, or list of (filter, options byte). Returns the SUBACK."""
        if isinstance(filters, str):
            filters = [(filters, 1)]
        pid = pid or self.pid()
        self.send(subscribe_packet(self.version, pid, filters, props))
        ack = self.expect(SUBACK)
        assert ack.pid == pid, f"SUBACK for packet id {ack.pid}, expected {pid}"
        return ack

    def unsubscribe(self, filters, props=None):
        pid = self.pid()
        self.send(unsubscribe_packet(self.version, pid, filters, props))
        ack = self.expect(UNSUBACK)
        assert ack.pid == pid
        return ack

    def publish(self, topic, payload=b"", qos=0, retain=False, props=None, pid=None, dup=False):
        """Sends a PUBLISH and returns its packet id (None for QoS 0). Does not wait for acks."""
        if qos and pid is None:
            pid = self.pid()
        self.send(publish_packet(self.version, topic, payload, qos, retain, dup, pid, props))
        return pid

    def ack(self, ptype, pid, reason=None):
        self.send(ack_packet(ptype, pid, reason))

    def disconnect(self, reason=None, props=None):
        self.send(disconnect_packet(self.version, reason, props))
        self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    # -- receiving

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError from None
        except (ConnectionResetError, BrokenPipeError):
            self.ending = "reset"
            raise Closed from None
        if not data:
            self.ending = "eof"
            raise Closed
        self.buf += data

    def _read(self, deadline):
        while True:
            buf = self.buf
            if len(buf) >= 2:
                length, mult, i = 0, 1, 1
                complete_len = False
                while i < len(buf) and i <= 4:
                    byte = buf[i]
                    length += (byte & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not byte & 0x80:
                        complete_len = True
                        break
                if complete_len and len(buf) >= i + length:
                    first = buf[0]
                    body = buf[i:i + length]
                    self.buf = buf[i + length:]
                    return self._parse(first >> 4, first & 0x0F, body)
                assert complete_len or i <= 4, "broker sent a Remaining Length longer than 4 bytes"
            self._fill(deadline)

    def recv(self, timeout=TIMEOUT):
        """The next packet. Fails the test if the connection closes or nothing comes in time."""
        deadline = time.monotonic() + timeout
        try:
            return self._read(deadline)
        except TimeoutError:
            raise AssertionError(f"no packet from the broker within {timeout}s") from None
        except Closed:
            raise AssertionError("the broker closed the connection") from None

    def recv_or_none(self, timeout):
        """The next packet, or None when none comes within `timeout` (the connection is still open)."""
        deadline = time.monotonic() + timeout
        try:
            return self._read(deadline)
        except TimeoutError:
            return None
        except Closed:
            raise AssertionError("the broker closed the connection") from None

    def expect(self, ptype, timeout=TIMEOUT):
        p = self.recv(timeout)
        assert p.type == ptype, f"expected {NAMES[ptype]}, got {p!r}"
        return p

    def expect_publish(self, timeout=TIMEOUT, ack=True):
        """Next PUBLISH; acknowledges it (QoS 1: PUBACK; QoS 2: PUBREC, PUBREL, PUBCOMP) unless ack=False."""
        p = self.expect(PUBLISH, timeout)
        if ack and p.qos == 1:
            self.ack(PUBACK, p.pid)
        elif ack and p.qos == 2:
            self.ack(PUBREC, p.pid)
            rel = self.expect(PUBREL, timeout)
            assert rel.pid == p.pid
            self.ack(PUBCOMP, p.pid)
        return p

    def expect_no_packet(self, window):
        p = self.recv_or_none(window)
        assert p is None, f"expected nothing from the broker for {window}s, got {p!r}"

    def wait_closed(self, timeout=TIMEOUT):
        """Reads until the broker closes the connection; returns the packets received before that."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            try:
                got.append(self._read(deadline))
            except Closed:
                self.close()
                return got
            except TimeoutError:
                raise AssertionError(
                    f"the broker did not close the connection within {timeout}s; received {got!r}") from None

    def is_open(self, window=0.05):
        """True when the connection is still open after `window` (packets received meanwhile are kept)."""
        deadline = time.monotonic() + window
        try:
            while True:
                self._fill(deadline)
        except TimeoutError:
            return True
        except Closed:
            return False

    # -- parsing

    def _parse(self, ptype, flags, body):
        p = Packet(ptype, flags, body)
        v5 = self.version == V5
        if ptype == CONNACK:
            p.session_present = bool(body[0] & 1)
            p.reason = body[1]
            if len(body) > 2:
                p.props, _ = parse_props(PacketTypes.CONNACK, body[2:])
        elif ptype == PUBLISH:
            p.qos = (flags >> 1) & 3
            p.dup = bool(flags & 8)
            p.retain = bool(flags & 1)
            (tlen,) = struct.unpack("!H", body[:2])
            p.wire_topic = body[2:2 + tlen].decode("utf-8")
            i = 2 + tlen
            if p.qos:
                (p.pid,) = struct.unpack("!H", body[i:i + 2])
                i += 2
            if v5:
                p.props, used = parse_props(PacketTypes.PUBLISH, body[i:])
                i += used
            p.payload = body[i:]
            p.topic = p.wire_topic
            alias = p.props.get("TopicAlias")
            if alias is not None:
                if p.wire_topic:
                    self.aliases[alias] = p.wire_topic
                else:
                    assert alias in self.aliases, f"broker used topic alias {alias} before defining it"
                    p.topic = self.aliases[alias]
        elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            (p.pid,) = struct.unpack("!H", body[:2])
            p.reason = body[2] if len(body) > 2 else 0
            if len(body) > 3:
                p.props, _ = parse_props(ptype, body[3:])
        elif ptype in (SUBACK, UNSUBACK):
            (p.pid,) = struct.unpack("!H", body[:2])
            i = 2
            if v5:
                p.props, used = parse_props(ptype, body[2:])
                i += used
            p.codes = list(body[i:])
        elif ptype == DISCONNECT:
            p.reason = body[0] if body else 0
            if len(body) > 1:
                p.props, _ = parse_props(PacketTypes.DISCONNECT, body[1:])
        return p


class TlsRawClient(RawClient):
    """RawClient over TLS. The handshake happens in the constructor (ssl.SSLError when the broker
    refuses it); a TLS alert that arrives later (TLS 1.3: the client has finished its part of the
    handshake before the server has checked its certificate) closes it and is kept in tls_error.
    `server_hostname` is the name checked against the broker's certificate (default: `host`)."""

    def __init__(self, host, port, context, version=V5, server_hostname=None):
        super().__init__(host, port, version)
        self.tls_error = None
        try:
            self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname or host)
        except BaseException:
            self.sock.close()
            raise

    def _fill(self, deadline):
        try:
            super()._fill(deadline)
        except ssl.SSLError as e:
            self.tls_error = e
            raise Closed from e
