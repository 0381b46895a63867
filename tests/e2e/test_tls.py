"""TLS listeners and client-certificate authentication, end to end (issue 4).

Certificates come from the session's throw-away PKI (pki.py). Each test copies the files the
broker reads into its own folder (`TlsFiles`), so that it can replace them for the reload tests.
The TLS listener requires a client certificate from the test CA, checks the CRL, and its auth
chain is ["certificate"] with identity = CN and client_id = "must_match"; the CN of every client
certificate is the client id the tests connect with.

Clients: `openssl s_client` for what the handshake negotiates; paho-mqtt, Debian's
mosquitto_pub/mosquitto_sub and a raw MQTT client over Python's ssl module (to see the exact TLS
alert and packets) for the rest. Refusals that depend on what the client can speak are checked
against a control: the same client against `openssl s_server`, which accepts it.
"""

import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import START_TIMEOUT, firehook_binary, write_config
from pahoclient import TIMEOUT, V311, V5, unique
from pki import cert_serial, pki  # noqa: F401  (pki is a fixture)
from rawclient import CONNACK, DISCONNECT, TlsRawClient, connect_packet

RELOAD_TIMEOUT = 10.0  # SIGHUP reloads at once; the file watch looks every second
AUTH = {"certificate": {"identity": "cn", "client_id": "must_match"}}


# ----------------------------------------------------------------------------------------------
# Files, listeners, brokers


class TlsFiles:
    """The broker's copies of the TLS files in one folder: server.crt, server.key, ca.crt, ca.crl."""

    def __init__(self, directory, pki, server=None, crl=None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True)
        server = server or pki.server
        self.cert, self.key = self.dir / "server.crt", self.dir / "server.key"
        self.ca, self.crl = self.dir / "ca.crt", self.dir / "ca.crl"
        shutil.copyfile(server.cert, self.cert)
        shutil.copyfile(server.key, self.key)
        shutil.copyfile(pki.ca, self.ca)
        shutil.copyfile(crl or pki.crl_revoked, self.crl)
        self.serial = server.serial  # of the server certificate the broker was started with

    def replace(self, target, source):
        """Replaces `target` with a copy of `source` at once (rename), as a deployment tool would."""
        tmp = target.with_name(target.name + ".new")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)

    def tls(self, relative_to=None, **overrides):
        """The [listener.tls] table; paths absolute, or relative to the folder `relative_to`."""

        def path(p):
            return os.path.relpath(p, relative_to) if relative_to else str(p)

        out = {"cert": path(self.cert), "key": path(self.key), "ca": path(self.ca), "crl": path(self.crl),
               "client_certificates": "required", "min_version": "1.2"}
        out.update(overrides)
        return out


def tls_listener(files, name="tls", **tls):
    return {"name": name, "address": "127.0.0.1", "port": 0, "protocol": "mqtts", "auth": ["certificate"],
            "allow_anonymous": False, "tls": files.tls(**tls)}


@pytest.fixture
def tls_files(tmp_path, pki):
    return TlsFiles(tmp_path / "tls", pki)


@pytest.fixture
def tls_broker(start_broker, tls_files):
    """A broker whose only listener, "tls", is the TLS listener over `tls_files`."""
    return start_broker({"listener": [tls_listener(tls_files)], "auth": AUTH})


def port_of(broker, listener="tls"):
    return broker.listeners[listener][1]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout}s")
        time.sleep(0.1)


# ----------------------------------------------------------------------------------------------
# openssl s_client / s_server


def s_client(port, pki, *args, identity=None, timeout=15):
    """Runs `openssl s_client` against 127.0.0.1:port, verifying the server against the test CA.
    Returns (handshake_ok, protocol, cipher, output). SECLEVEL=0 so that the client itself offers
    TLS 1.0/1.1 and SHA-1 suites: whatever is refused is refused by the server."""
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
           "-CAfile", str(pki.ca), "-verify_return_error", "-verify_ip", "127.0.0.1", "-showcerts"]
    if "-cipher" not in args:
        cmd += ["-cipher", "DEFAULT@SECLEVEL=0"]
    if identity is not None:
        cmd += ["-cert", str(identity.cert), "-key", str(identity.key)]
    cmd += list(args)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    # "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" comes always; the SSL-Session block with
    # "Protocol  :" only once a TLS 1.3 session ticket has arrived, which s_client may not wait for.
    m = re.search(r"^New, (\S+), Cipher is (\S+)", out, re.M)
    protocol, cipher = (m.group(1), m.group(2)) if m else (None, None)
    ok = r.returncode == 0 and cipher not in (None, "(NONE)")
    return ok, protocol, cipher, out


def server_serial(port, pki, identity):
    """The serial of the certificate a new handshake with the broker shows."""
    ok, _, _, out = s_client(port, pki, "-tls1_3", identity=identity)
    assert ok, f"handshake failed:\n{out[-3000:]}"
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S).group(0)
    return cert_serial(pem=pem + "\n")


class SServer:
    """`openssl s_server` with OpenSSL's permissive defaults (SECLEVEL=0): the control that shows a
    client invocation can succeed, so that its refusal by the broker means something."""

    def __init__(self, cert, key):
        self.process = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", str(cert), "-key", str(key), "-cipher",
             "DEFAULT@SECLEVEL=0", "-alpn", "mqtt"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # EOF on stdin ends it
        deadline = time.monotonic() + 10
        self.port = None
        while self.port is None and time.monotonic() < deadline:
            line = self.process.stdout.readline().decode()
            m = re.match(r"ACCEPT .*:(\d+)$", line.strip())
            if m:
                self.port = int(m.group(1))
            elif not line:
                break
        assert self.port, "openssl s_server did not start"
        # Keep its stdout drained: it prints every session.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def close(self):
        self.process.kill()
        self.process.wait(timeout=5)


@pytest.fixture(scope="module")
def control_ec(pki):
    s = SServer(pki.server.cert, pki.server.key)
    yield s
    s.close()


@pytest.fixture(scope="module")
def control_rsa(pki):
    s = SServer(pki.rsa_server.cert, pki.rsa_server.key)
    yield s
    s.close()


# ----------------------------------------------------------------------------------------------
# MQTT clients over TLS


def client_context(pki, identity=None, ca=None, version=None):
    """A Python client context that verifies the broker against the test CA (and 127.0.0.1)."""
    ctx = ssl.create_default_context(cafile=str(ca or pki.ca))
    if identity is not None:
        ctx.load_cert_chain(str(identity.cert), str(identity.key))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def tls_refusal(port, context, version=V5, client_id="device-1"):
    """Connects over TLS and sends CONNECT. Returns the TLS error the client saw; fails the test if
    the broker answered anything instead of refusing the handshake."""
    try:
        c = TlsRawClient("127.0.0.1", port, context, version)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        return f"handshake: {e}"
    try:
        try:
            c.send(connect_packet(version, client_id))
        except (ssl.SSLError, OSError) as e:
            return f"send: {e}"
        got = c.wait_closed()
        assert got == [], f"the broker accepted the handshake and answered {got!r}"
        return f"after handshake: {c.tls_error}"
    finally:
        c.close()


def tls_client(clients, broker, pki, identity, version=V5, client_id=None, listener="tls", connect=True):
    """A paho client (pahoclient.Client) over TLS with a client certificate; the client id is the CN."""
    c = clients(broker, version, connect=False, client_id=client_id or identity.cn, listener=listener)
    c.c.tls_set(ca_certs=str(pki.ca), certfile=str(identity.cert), keyfile=str(identity.key))
    if connect:
        c.connect()
    return c


def paho_refusal(c):
    """Drives paho by hand until the broker refuses it; returns what paho saw. Fails on a CONNACK."""
    try:
        c.c.connect(c.host, c.port, keepalive=30)
    except (ssl.SSLError, OSError) as e:
        return f"handshake: {e}"
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            try:
                rc = c.c.loop(timeout=0.1)
            except (ssl.SSLError, OSError) as e:
                return f"after handshake: {e}"
            assert c.connacks.empty(), f"the broker answered CONNACK {c.connacks.get()!r}"
            if rc != 0:
                return f"after handshake: paho rc {rc}"
    finally:
        sock = c.c.socket()
        if sock is not None:
            sock.close()
    pytest.fail(f"paho still connected after {TIMEOUT}s without a CONNACK")


# ----------------------------------------------------------------------------------------------
# What the handshake negotiates (openssl s_client)


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_tls_1_0_and_1_1_are_refused(tls_broker, pki, control_ec, flag):
    ok, protocol, _, out = s_client(control_ec.port, pki, flag, "-alpn", "mqtt")
    assert ok, f"control: openssl s_client {flag} cannot even reach openssl s_server:\n{out[-2000:]}"
    ok, protocol, cipher, out = s_client(port_of(tls_broker), pki, flag, identity=pki.clients["device-1"])
    assert not ok, f"the broker accepted {protocol} with {cipher}"


@pytest.mark.parametrize("flag,protocol", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_tls_1_2_and_1_3_are_accepted(tls_broker, pki, flag, protocol):
    ok, got, cipher, out = s_client(port_of(tls_broker), pki, flag, identity=pki.clients["device-1"])
    assert ok, f"handshake with {flag} failed:\n{out[-3000:]}"
    assert got == protocol
    # The server certificate verified against the CA, for 127.0.0.1.
    assert "Verify return code: 0 (ok)" in out


@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384"])
def test_tls_1_2_cbc_suites_are_refused(tls_broker, pki, control_ec, cipher):
    """ECDHE, but not AEAD: refused. The control server accepts the same client."""
    ok, _, got, out = s_client(control_ec.port, pki, "-tls1_2", "-cipher", f"{cipher}@SECLEVEL=0")
    assert ok and got == cipher, f"control: openssl s_server did not negotiate {cipher}:\n{out[-2000:]}"
    ok, _, got, out = s_client(port_of(tls_broker), pki, "-tls1_2", "-cipher", f"{cipher}@SECLEVEL=0",
                               identity=pki.clients["device-1"])
    assert not ok, f"the broker negotiated {got}"


@pytest.mark.parametrize("cipher", ["AES128-SHA", "AES128-GCM-SHA256"])
def test_tls_1_2_rsa_key_exchange_is_refused(start_broker, tmp_path, pki, control_rsa, cipher):
    """No forward secrecy (static RSA key exchange), even with AEAD: refused. An RSA server key, or
    these suites could not be chosen by any server and the refusal would prove nothing."""
    files = TlsFiles(tmp_path / "tls", pki, server=pki.rsa_server)
    b = start_broker({"listener": [tls_listener(files)], "auth": AUTH})
    ok, _, got, out = s_client(control_rsa.port, pki, "-tls1_2", "-cipher", f"{cipher}@SECLEVEL=0")
    assert ok and got == cipher, f"control: openssl s_server did not negotiate {cipher}:\n{out[-2000:]}"
    ok, _, got, out = s_client(port_of(b), pki, "-tls1_2", "-cipher", f"{cipher}@SECLEVEL=0",
                               identity=pki.clients["device-1"])
    assert not ok, f"the broker negotiated {got}"
    # ... while ECDHE with the same RSA key is served.
    ok, _, got, out = s_client(port_of(b), pki, "-tls1_2", identity=pki.clients["device-1"])
    assert ok, out[-3000:]
    assert got.startswith("ECDHE-RSA-") and ("GCM" in got or "CHACHA20" in got), got


def test_tls_1_2_default_suite_is_ecdhe_with_aead(tls_broker, pki):
    ok, _, got, out = s_client(port_of(tls_broker), pki, "-tls1_2", identity=pki.clients["device-1"])
    assert ok, out[-3000:]
    assert got.startswith("ECDHE-ECDSA-") and ("GCM" in got or "CHACHA20" in got), got


def test_alpn_mqtt_is_answered(tls_broker, pki):
    for flag in ("-tls1_2", "-tls1_3"):
        ok, _, _, out = s_client(port_of(tls_broker), pki, flag, "-alpn", "mqtt", identity=pki.clients["device-1"])
        assert ok, out[-3000:]
        assert "ALPN protocol: mqtt" in out, f"{flag}:\n{out[-3000:]}"


def test_min_version_1_3_refuses_1_2(start_broker, tls_files, pki):
    b = start_broker({"listener": [tls_listener(tls_files, name="tls13", min_version="1.3"),
                                   tls_listener(tls_files, name="tls12")],
                      "auth": AUTH})
    device = pki.clients["device-1"]
    ok, protocol, cipher, _ = s_client(port_of(b, "tls13"), pki, "-tls1_2", identity=device)
    assert not ok, f"the 1.3-only listener accepted {protocol} with {cipher}"
    ok, protocol, _, out = s_client(port_of(b, "tls13"), pki, "-tls1_3", identity=device)
    assert ok and protocol == "TLSv1.3", out[-3000:]
    # The same client, to the same broker's 1.2 listener: so the refusal above was the setting.
    ok, protocol, _, out = s_client(port_of(b, "tls12"), pki, "-tls1_2", identity=device)
    assert ok and protocol == "TLSv1.2", out[-3000:]


def test_tls_1_2_session_resumption(tls_broker, pki, tmp_path):
    """A client that comes back with its session (ticket) skips the full handshake."""
    session = tmp_path / "session.pem"
    device = pki.clients["device-1"]
    ok, _, _, out = s_client(port_of(tls_broker), pki, "-tls1_2", "-sess_out", str(session), identity=device)
    assert ok, out[-3000:]
    # (s_client exits 1 after a resumed handshake, against openssl s_server too: only its report counts.)
    _, _, _, out = s_client(port_of(tls_broker), pki, "-tls1_2", "-sess_in", str(session), identity=device)
    assert re.search(r"^Reused, TLSv1\.2", out, re.M), f"the session was not resumed:\n{out[-3000:]}"


def test_tls_1_3_session_resumption_with_the_one_ticket(tls_broker, pki):
    """TLS 1.3: the broker sends one session ticket (an MQTT client keeps one connection at a time,
    so one is all it uses), and a client that comes back with it resumes the session."""
    device = pki.clients["device-1"]
    ctx = client_context(pki, device, version=ssl.TLSVersion.TLSv1_3)

    def connect(session=None):
        raw = socket.create_connection(("127.0.0.1", port_of(tls_broker)), timeout=TIMEOUT)
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
        s.sendall(connect_packet(V5, device.cn))
        first = s.recv(1)  # the CONNACK's first byte; the ticket was sent before it
        assert first and first[0] >> 4 == CONNACK, f"expected a CONNACK, got {first!r}"
        return s

    first = connect()
    session = first.session
    first.close()
    assert session is not None and session.has_ticket, "no TLS 1.3 session ticket arrived before the CONNACK"
    again = connect(session)
    try:
        assert again.session_reused, "the broker did a full handshake for a client with a valid ticket"
    finally:
        again.close()


def test_paths_relative_to_the_config_file(start_broker, tmp_path, tls_files, pki):
    # start_broker writes the config into tmp_path/broker0; the files are in tmp_path/tls.
    listener = tls_listener(tls_files)
    listener["tls"] = tls_files.tls(relative_to=tmp_path / "broker0")
    assert listener["tls"]["cert"] == "../tls/server.crt"
    b = start_broker({"listener": [listener], "auth": AUTH})
    ok, _, _, out = s_client(port_of(b), pki, "-tls1_3", identity=pki.clients["device-1"])
    assert ok, out[-3000:]


# ----------------------------------------------------------------------------------------------
# MQTT over TLS with a client certificate


def test_paho_round_trip_with_client_certificates(tls_broker, clients, pki, version):
    sub = tls_client(clients, tls_broker, pki, pki.clients["device-1"], version)
    pub = tls_client(clients, tls_broker, pki, pki.clients["device-2"], version)
    topic = f"tls/{unique()}"
    sub.subscribe(topic, 1)
    pub.publish(topic, b"over tls", 1)
    m = sub.expect()
    assert (m.topic, m.payload) == (topic, b"over tls")
    # And back, the other way.
    pub.subscribe(topic + "/back", 1)
    sub.publish(topic + "/back", b"reply", 1)
    assert pub.expect().payload == b"reply"


def test_paho_without_client_certificate_when_optional(start_broker, tls_files, clients, pki):
    """client_certificates = "optional": a client without one completes the handshake; with the
    chain ["certificate"] only and no anonymous access, it is then not authorized."""
    listener = tls_listener(tls_files, client_certificates="optional")
    b = start_broker({"listener": [listener], "auth": AUTH})
    c = clients(b, V5, connect=False, client_id="device-1", listener="tls")
    c.c.tls_set(ca_certs=str(pki.ca))
    session_present, reason, _ = c.connect(expect_rc=None)
    assert reason in (0x86, 0x87), f"CONNACK {reason:#04x}, expected 0x86 or 0x87"
    ok_client = tls_client(clients, b, pki, pki.clients["device-2"])
    ok_client.roundtrip()


def read_lines_into(stream, q):
    for line in stream:
        q.put(line.rstrip("\n"))
    q.put(None)


@pytest.mark.parametrize("mqtt_version", ["mqttv311", "mqttv5"])
def test_mosquitto_pub_sub_round_trip(tls_broker, pki, mqtt_version):
    port = str(port_of(tls_broker))
    common = ["-h", "127.0.0.1", "-p", port, "--cafile", str(pki.ca), "-V", mqtt_version, "-q", "1"]
    topic = f"tls/mosquitto/{unique()}"
    d1, d2 = pki.clients["device-1"], pki.clients["device-2"]
    # stdbuf: mosquitto_sub's -d lines would sit in its stdio buffer, and the test waits for SUBACK.
    sub = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", *common, "--cert", str(d1.cert), "--key", str(d1.key),
                            "-i", d1.cn, "-t", topic, "-C", "1", "-W", "20", "-d"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = queue.Queue()
    threading.Thread(target=read_lines_into, args=(sub.stdout, lines), daemon=True).start()
    seen = []
    try:
        deadline = time.monotonic() + 10
        while not any("SUBACK" in s for s in seen):
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail("mosquitto_sub got no SUBACK within 10s:\n" + "\n".join(seen))
            if line is None:
                pytest.fail(f"mosquitto_sub exited ({sub.wait()}) before SUBACK:\n" + "\n".join(seen))
            seen.append(line)
        pub = subprocess.run(["mosquitto_pub", *common, "--cert", str(d2.cert), "--key", str(d2.key), "-i", d2.cn,
                              "-t", topic, "-m", "hello from mosquitto_pub"],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
        assert pub.returncode == 0, f"mosquitto_pub failed ({pub.returncode}): {pub.stdout}{pub.stderr}"
        assert sub.wait(timeout=15) == 0, "mosquitto_sub:\n" + "\n".join(seen)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    while (line := lines.get(timeout=5)) is not None:
        seen.append(line)
    assert "hello from mosquitto_pub" in seen, "\n".join(seen)


def tls13_connect_with_finished(port, context, packet, timeout=TIMEOUT):
    """A TLS 1.3 handshake whose last flight (the client's Finished) and the first application record
    (`packet`) leave in one write, as they often do from real clients; returns the first decrypted
    bytes the broker sends back, or None when nothing comes within `timeout`."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if outgoing.pending:
                    sock.sendall(outgoing.read())
                data = sock.recv(65536)
                assert data, "the broker closed the connection during the handshake"
                incoming.write(data)
        tls.write(packet)
        sock.sendall(outgoing.read())  # Finished + the record with `packet`, in one segment
        deadline = time.monotonic() + timeout
        while True:
            try:
                return tls.read(65536)
            except ssl.SSLWantReadError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                sock.settimeout(remaining)
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    return None
                if not data:
                    return b""
                incoming.write(data)
    finally:
        sock.close()


def test_connect_in_the_same_write_as_the_tls_1_3_finished_is_answered(tls_broker, pki):
    """The CONNECT arrives together with the end of the handshake: the broker must not wait for the
    socket to become readable again before reading it (it never will: the client waits for CONNACK)."""
    ctx = client_context(pki, pki.clients["device-1"], version=ssl.TLSVersion.TLSv1_3)
    for attempt in range(5):
        answer = tls13_connect_with_finished(port_of(tls_broker), ctx, connect_packet(V5, "device-1"))
        assert answer, (f"attempt {attempt + 1}: no answer to a CONNECT sent with the client's Finished "
                        f"within {TIMEOUT}s (got {answer!r})")
        assert answer[0] >> 4 == CONNACK, f"expected CONNACK, got {answer[:8]!r}"


# ----------------------------------------------------------------------------------------------
# Refused clients

# (which client certificate, the alert a client sees for it under TLS 1.2 / TLS 1.3)
REFUSED = {
    "none": (None, "handshake failure", "certificate required"),
    "revoked": ("revoked", "certificate revoked", "certificate revoked"),
    "expired": ("expired", "certificate expired", "certificate expired"),
    "other_ca": ("stranger", "unknown ca", "unknown ca"),
}


def refused_identity(pki, which):
    name = REFUSED[which][0]
    if name is None:
        return None
    return pki.stranger if name == "stranger" else pki.clients[name]


@pytest.mark.parametrize("tls_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["1.2", "1.3"])
@pytest.mark.parametrize("which", list(REFUSED))
def test_refused_client_certificates(tls_broker, pki, which, tls_version):
    identity = refused_identity(pki, which)
    ctx = client_context(pki, identity, version=tls_version)
    client_id = identity.cn if identity else "device-1"
    error = tls_refusal(port_of(tls_broker), ctx, client_id=client_id)
    alert = REFUSED[which][1 if tls_version == ssl.TLSVersion.TLSv1_2 else 2]
    assert alert in error.lower(), f"expected the TLS alert {alert!r}, the client saw: {error}"
    # The same client with a good certificate gets in: the refusal was about the certificate.
    good = client_context(pki, pki.clients["device-3"], version=tls_version)
    c = TlsRawClient("127.0.0.1", port_of(tls_broker), good)
    try:
        c.connect(client_id="device-3")
    finally:
        c.close()


@pytest.mark.parametrize("which", list(REFUSED))
def test_refused_client_certificates_paho(tls_broker, clients, pki, which, version):
    identity = refused_identity(pki, which)
    c = clients(tls_broker, version, connect=False, client_id=identity.cn if identity else "device-1",
                listener="tls")
    if identity is None:
        c.c.tls_set(ca_certs=str(pki.ca))
    else:
        c.c.tls_set(ca_certs=str(pki.ca), certfile=str(identity.cert), keyfile=str(identity.key))
    paho_refusal(c)


@pytest.mark.parametrize("which", list(REFUSED))
def test_refused_client_certificates_mosquitto_pub(tls_broker, pki, which):
    identity = refused_identity(pki, which)
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port_of(tls_broker)), "--cafile", str(pki.ca),
           "-t", "tls/refused", "-m", "x", "-q", "1", "-i", identity.cn if identity else "device-1"]
    if identity is not None:
        cmd += ["--cert", str(identity.cert), "--key", str(identity.key)]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    assert r.returncode != 0, f"mosquitto_pub with {which} certificate succeeded: {r.stdout}{r.stderr}"


@pytest.mark.parametrize("which,reason", [("revoked", "revoked"), ("expired", "expired"),
                                          ("other_ca", "issuer"), ("none", "certificate")])
def test_refused_handshake_is_logged_with_its_reason(tls_broker, pki, which, reason):
    """An operator must be able to tell from the log why a device cannot connect."""
    since = len(tls_broker.stderr_text())
    identity = refused_identity(pki, which)
    tls_refusal(port_of(tls_broker), client_context(pki, identity, version=ssl.TLSVersion.TLSv1_3),
                client_id=identity.cn if identity else "device-1")
    e = tls_broker.wait_for_event("connection_refused", since, peer="127.0.0.1", timeout=5)
    assert "tls handshake failed" in e["reason"].lower() and reason in e["reason"].lower(), (
        f"the event does not say why ({reason!r}): {e}")


@pytest.mark.parametrize("version,expected", [(V5, 0x85), (V311, 0x02)], ids=["5.0", "3.1.1"])
def test_client_id_must_match_certificate_cn(tls_broker, pki, version, expected):
    ctx = client_context(pki, pki.clients["device-1"])
    c = TlsRawClient("127.0.0.1", port_of(tls_broker), ctx, version)
    try:
        ack = c.connect(client_id="device-2", expect_rc=None)
        assert ack.reason == expected, f"CONNACK {ack!r}, expected reason {expected:#04x}"
        c.wait_closed()
    finally:
        c.close()
    # The certificate's own CN as client id is accepted.
    c = TlsRawClient("127.0.0.1", port_of(tls_broker), ctx, version)
    try:
        c.connect(client_id="device-1")
    finally:
        c.close()


def test_certificate_of_another_device_cannot_take_over_its_session(tls_broker, clients, pki):
    victim = tls_client(clients, tls_broker, pki, pki.clients["device-1"])
    victim.subscribe("tls/takeover", 1)
    ctx = client_context(pki, pki.clients["device-2"])
    c = TlsRawClient("127.0.0.1", port_of(tls_broker), ctx, V5)
    try:
        assert c.connect(client_id="device-1", expect_rc=None).reason == 0x85
    finally:
        c.close()
    assert not victim.disconnected.is_set(), "the victim's session was taken over"
    victim.roundtrip()


# ----------------------------------------------------------------------------------------------
# Reloads


@pytest.mark.parametrize("trigger", ["sighup", "watch"])
def test_server_certificate_reload_keeps_live_clients(tls_broker, tls_files, clients, pki, trigger):
    device1, device2 = pki.clients["device-1"], pki.clients["device-2"]
    port = port_of(tls_broker)
    assert server_serial(port, pki, device2) == tls_files.serial
    live = tls_client(clients, tls_broker, pki, device1)
    topic = f"tls/reload/{unique()}"
    live.subscribe(topic, 1)

    new = pki.issue_server()
    assert new.serial != tls_files.serial
    since = len(tls_broker.stderr_text())
    tls_files.replace(tls_files.key, new.key)
    tls_files.replace(tls_files.cert, new.cert)
    if trigger == "sighup":
        tls_broker.send_signal(signal.SIGHUP)
    wait_for(lambda: server_serial(port, pki, device2) == new.serial, RELOAD_TIMEOUT,
             f"new handshakes to show the new server certificate {new.serial} ({trigger})")
    e = tls_broker.wait_for_event("reload", since, decision="allow", timeout=1)
    changed = e["reason"].split("(changed: ", 1)[-1]
    assert str(tls_files.cert) in changed and str(tls_files.key) in changed, e

    # The client connected before the reload is still there, both ways, and new ones get in.
    assert not live.disconnected.is_set(), f"the live client was disconnected (rc {live.disconnect_rc})"
    pub = tls_client(clients, tls_broker, pki, device2)
    pub.publish(topic, b"after reload", 1)
    assert live.expect().payload == b"after reload"
    live.publish(topic, b"from the old connection", 1)
    assert live.expect().payload == b"from the old connection"


def test_broken_certificate_file_keeps_old_material(tls_broker, tls_files, clients, pki):
    device1, device2 = pki.clients["device-1"], pki.clients["device-2"]
    port = port_of(tls_broker)
    live = tls_client(clients, tls_broker, pki, device1)
    topic = f"tls/broken/{unique()}"
    live.subscribe(topic, 1)

    since = len(tls_broker.stderr_text())
    tls_files.cert.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    tls_broker.send_signal(signal.SIGHUP)
    e = tls_broker.wait_for_event("reload", since, decision="deny", timeout=RELOAD_TIMEOUT)
    assert str(tls_files.cert) in e["reason"] and "previous version stays" in e["reason"], e

    # New handshakes still work, with the old certificate; the live client is untouched.
    assert server_serial(port, pki, device2) == tls_files.serial
    pub = tls_client(clients, tls_broker, pki, device2)
    pub.publish(topic, b"still served", 1)
    assert live.expect().payload == b"still served"
    assert tls_broker.alive()

    # Once the file is good again, the watch (or SIGHUP) picks it up.
    new = pki.issue_server()
    tls_files.replace(tls_files.key, new.key)
    tls_files.replace(tls_files.cert, new.cert)
    tls_broker.send_signal(signal.SIGHUP)
    wait_for(lambda: server_serial(port, pki, device2) == new.serial, RELOAD_TIMEOUT,
             "the repaired certificate to be used")


@pytest.mark.parametrize("trigger", ["sighup", "watch"])
def test_crl_update_drops_revoked_live_client(tls_broker, tls_files, clients, pki, version, trigger):
    # The doomed client is a raw one: paho 1.6.1 drops the reason of a DISCONNECT shorter than
    # 3 bytes (client.py _handle_disconnect), so it could not tell 0x98 from a plain close.
    doomed = TlsRawClient("127.0.0.1", port_of(tls_broker), client_context(pki, pki.clients["doomed"]), version)
    try:
        doomed.connect(client_id="doomed")
        doomed.subscribe("tls/crl/#")
        keeper = tls_client(clients, tls_broker, pki, pki.clients["device-1"], version)
        keeper.subscribe("tls/crl/#", 1)

        tls_files.replace(tls_files.crl, pki.crl_doomed)
        if trigger == "sighup":
            tls_broker.send_signal(signal.SIGHUP)
        got = doomed.wait_closed(timeout=RELOAD_TIMEOUT)
    finally:
        doomed.close()
    if version == V5:
        assert [(p.type, p.reason) for p in got] == [(DISCONNECT, 0x98)], \
            f"expected DISCONNECT 0x98 (Administrative action) before the close, got {got!r}"
    else:
        assert got == [], f"3.1.1 has no DISCONNECT from the server; got {got!r}"

    # The other client stays and works; new handshakes with the revoked certificate are refused.
    assert not keeper.disconnected.is_set(), f"the other client was dropped too (rc {keeper.disconnect_rc})"
    keeper.publish("tls/crl/after", b"still here", 1)
    assert keeper.expect().payload == b"still here"
    error = tls_refusal(port_of(tls_broker), client_context(pki, pki.clients["doomed"]), client_id="doomed")
    assert "certificate revoked" in error.lower(), error


def test_a_banned_certificate_is_dropped_and_refused_until_the_ban_is_removed(tls_broker, clients, pki):
    """`firehook ban add --certificate FINGERPRINT` (as openssl prints it): the live client with that
    certificate gets DISCONNECT 0x98 within a second, its next CONNECT 0x8A Banned, another
    device's certificate is untouched; once the ban is removed it connects again."""
    doomed_cert = pki.clients["doomed"]
    printed = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(doomed_cert.cert)],
                             capture_output=True, text=True, check=True).stdout.strip()
    fingerprint = printed.split("=", 1)[1]  # "AB:CD:..."

    def ban(*args):
        p = subprocess.run([firehook_binary(), "ban", "-c", str(tls_broker.config_path), *args],
                           capture_output=True, text=True, timeout=15)
        assert p.returncode == 0, p
        return p.stdout

    def connect_doomed():
        c = TlsRawClient("127.0.0.1", port_of(tls_broker), client_context(pki, doomed_cert), V5)
        return c, c.connect(client_id="doomed", expect_rc=None)

    doomed, _ = connect_doomed()
    keeper = tls_client(clients, tls_broker, pki, pki.clients["device-1"])
    try:
        out = ban("add", "--certificate", fingerprint, "--for", "10m", "--reason", "stolen")
        assert fingerprint.replace(":", "").lower() in out, out
        started = time.monotonic()
        got = doomed.wait_closed(timeout=3)
        assert [(p.type, p.reason) for p in got] == [(DISCONNECT, 0x98)], got
        assert time.monotonic() - started < 1.5
    finally:
        doomed.close()
    again, ack = connect_doomed()
    again.close()
    assert ack.reason == 0x8A, ack
    refused = tls_broker.wait_for_event("auth_denied", client_id="doomed", subject="ban")
    assert "banned (certificate " + fingerprint.replace(":", "").lower() in refused["reason"], refused
    assert not keeper.disconnected.is_set()

    ban("remove", "--certificate", fingerprint)
    deadline = time.monotonic() + 3  # the broker reads the database every 500 ms
    while True:
        c, ack = connect_doomed()
        c.close()
        if ack.reason == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert ack.reason == 0, ack


def test_sighup_with_unchanged_files_keeps_everyone(tls_broker, clients, pki):
    live = tls_client(clients, tls_broker, pki, pki.clients["device-1"])
    since = len(tls_broker.stderr_text())
    tls_broker.send_signal(signal.SIGHUP)
    tls_broker.wait_for_event("reload", since, timeout=RELOAD_TIMEOUT)
    live.roundtrip()
    assert not live.disconnected.is_set()


# ----------------------------------------------------------------------------------------------
# Plaintext only where asked for


def test_plaintext_on_all_addresses_refused_at_start(tmp_path):
    path, _ = write_config(tmp_path, {"listener": [{"name": "everywhere", "address": "0.0.0.0", "port": 0,
                                                    "protocol": "mqtt", "allow_anonymous": True}]})
    try:
        r = subprocess.run([firehook_binary(), "serve", "-c", str(path)], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"firehook served a plaintext listener on 0.0.0.0 without allow_plaintext:\n{e.stdout}")
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "listening" not in out and 'listener "everywhere" mqtt on' not in out, out
    assert "everywhere" in out and "allow_plaintext" in out, out


def test_plaintext_on_all_addresses_with_allow_plaintext_warns(start_broker, clients):
    b = start_broker({"listener": [{"name": "everywhere", "address": "0.0.0.0", "port": 0, "protocol": "mqtt",
                                    "allow_anonymous": True, "allow_plaintext": True}]})
    assert b.listeners["everywhere"][0] == "0.0.0.0"
    out = b.stderr_text() + "\n".join(b.stdout_lines)
    warnings = [line for line in out.splitlines() if "everywhere" in line and "warn" in line.lower()]
    assert warnings, f"no warning names the plaintext listener:\n{out}"
    # It does serve (on 127.0.0.1, one of "all addresses").
    clients(b, V5).roundtrip()
