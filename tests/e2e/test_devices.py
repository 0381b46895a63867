"""Device provisioning end to end (issue 15, "The registry and the certificate authority").

The flow a user follows: `firehook ca init`, a device makes its own key and request with
`openssl req`, `firehook device add NAME --csr FILE --out DIR --role R --attr K=V`, and the
mosquitto_pub command that `device add` prints is run as printed. The broker's TLS listener trusts
the test PKI (its server certificate) and the new device CA (`ca` is both in one bundle). A second
device, `monitor`, is provisioned without a request (firehook makes its key) and reads what the
first publishes over a raw TLS client, so each delivery is seen, not assumed.

The topics file binds one topic to `attr.building`: the attribute that `device add --attr` stores
must reach the certificate identity for it to work.
"""

import json
import os
import shlex
import shutil
import ssl
import stat
import subprocess
import time
from pathlib import Path

import jwt
import pytest

from conftest import firehook_binary, write_config
from pki import pki  # noqa: F401  (pki is a fixture)
from rawclient import DISCONNECT, PUBACK, V5, TlsRawClient, connect_packet
from topics_helpers import AUDIENCE, ISSUER, make_jwt_key

TOPICS = """\
[roles.sensors]
description = "Sensors provisioned with firehook device add"

[roles.monitor]
description = "Reads what the sensors publish"

[[topic]]
pattern = "devices/{device}/status"
description = "Each device's status, under its own name"
publish = [{ role = "sensors", where = { device = "cert.cn" } }]
subscribe = ["monitor"]

[[topic]]
pattern = "buildings/{building}/telemetry"
description = "Telemetry of one building"
publish = [{ role = "sensors", where = { building = "attr.building" } }]
subscribe = ["monitor"]

[[topic]]
pattern = "$SYS/broker/messages/queued"
description = "QoS 1/2 messages waiting in sessions' queues"
subscribe = ["monitor"]
"""

BAD_USER_OR_PASSWORD = {4: 0x04, 5: 0x86}


class Fleet:
    """A state dir, a configuration for the commands and the broker, and the files they share."""

    def __init__(self, tmp_path, pki):
        self.dir = tmp_path
        self.pki = pki
        self.state = tmp_path / "state"
        tls = tmp_path / "tls"
        tls.mkdir()
        shutil.copyfile(pki.server.cert, tls / "server.crt")
        shutil.copyfile(pki.server.key, tls / "server.key")
        self.listener_ca = tls / "ca.crt"
        (tmp_path / "topics.toml").write_text(TOPICS)
        self.overrides = {
            "topics": str(tmp_path / "topics.toml"),
            "broker": {"state_dir": str(self.state)},
            "auth": {"certificate": {"identity": "cn", "client_id": "must_match"}},
            "listener": [{
                "name": "tls", "address": "127.0.0.1", "port": 0, "protocol": "mqtts",
                "auth": ["certificate"], "allow_anonymous": False,
                "tls": {"cert": str(tls / "server.crt"), "key": str(tls / "server.key"),
                        "ca": str(self.listener_ca), "client_certificates": "required"},
            }],
        }
        cli = tmp_path / "cli"
        cli.mkdir()
        self.config, _ = write_config(cli, self.overrides)

    def firehook(self, *args, expect=0):
        r = subprocess.run([firehook_binary(), *map(str, args), "-c", str(self.config)], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == expect, (f"firehook {' '.join(map(str, args))}: exit {r.returncode}, expected "
                                        f"{expect}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def init_ca(self):
        self.firehook("ca", "init")
        # The listener trusts the test PKI and the device CA.
        self.listener_ca.write_text(Path(self.pki.ca).read_text() + (self.state / "ca" / "ca.crt").read_text())

    def make_request(self, name, cn="whatever"):
        """A key and request made as a device makes them; the CN it asks for is ignored."""
        key, csr = self.dir / f"{name}-own.key", self.dir / f"{name}.csr"
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}"],
                       check=True, capture_output=True, timeout=30)
        return key, csr

    def context(self, bundle, name):
        ctx = ssl.create_default_context(cafile=str(bundle / "broker-ca.crt"))
        ctx.load_cert_chain(str(bundle / f"{name}.crt"), str(bundle / f"{name}.key"))
        return ctx


def printed_command(stdout, program):
    """The `program ...` line that device add printed, split as a shell would."""
    for line in stdout.splitlines():
        if line.strip().startswith(program + " "):
            return shlex.split(line.strip())
    pytest.fail(f"no {program} line in:\n{stdout}")


def replace_option(argv, option, value):
    out = list(argv)
    out[out.index(option) + 1] = value
    return out


@pytest.fixture
def fleet(tmp_path, pki):
    return Fleet(tmp_path, pki)


@pytest.fixture
def provisioned(fleet, start_broker):
    """The CA, sensor-1 (from its own request, building b1) and monitor, and a broker running."""
    fleet.init_ca()
    own_key, csr = fleet.make_request("sensor-1", cn="not-the-name")
    sensor = fleet.dir / "sensor-1-bundle"
    added = fleet.firehook("device", "add", "sensor-1", "--csr", csr, "--out", sensor, "--role", "sensors",
                           "--attr", "building=b1")
    # The device keeps its key beside the files of the bundle, as the printed command expects.
    shutil.copyfile(own_key, sensor / "sensor-1.key")
    monitor = fleet.dir / "monitor-bundle"
    fleet.firehook("device", "add", "monitor", "--out", monitor, "--role", "monitor")
    broker = start_broker(fleet.overrides)
    host, port = broker.listeners["tls"]
    fleet.broker, fleet.sensor, fleet.monitor = broker, sensor, monitor
    # The configured port is 0: the command printed says PORT; the real one is known now.
    fleet.publish = replace_option(printed_command(added.stdout, "mosquitto_pub"), "-p", str(port))
    fleet.port = port
    return fleet


def monitor_client(fleet, version):
    c = TlsRawClient("127.0.0.1", fleet.port, fleet.context(fleet.monitor, "monitor"), version)
    c.connect(client_id="monitor")
    return c


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


# ----------------------------------------------------------------------------------------------


def test_ca_init_writes_a_private_key_and_refuses_to_run_twice(fleet):
    r = fleet.firehook("ca", "init")
    key, cert = fleet.state / "ca" / "ca.key", fleet.state / "ca" / "ca.crt"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"], capture_output=True, text=True,
                          check=True).stdout
    assert "CA:TRUE" in text and "prime256v1" in text
    assert str(cert) in r.stdout
    again = fleet.firehook("ca", "init", expect=1)
    assert "exists" in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_device_add_with_a_csr_issues_a_client_certificate_for_the_name(fleet):
    fleet.init_ca()
    own_key, csr = fleet.make_request("sensor-1", cn="admin")
    bundle = fleet.dir / "bundle"
    fleet.firehook("device", "add", "sensor-1", "--csr", csr, "--out", bundle, "--days", "30")
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o700
    assert not (bundle / "sensor-1.key").exists()  # the key stayed with the device
    cert = bundle / "sensor-1.crt"
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text", "-subject"],
                          capture_output=True, text=True, check=True).stdout
    assert "subject=CN = sensor-1" in text  # never the CN the request asked for
    assert "TLS Web Client Authentication" in text and "Digital Signature" in text
    assert "CA:FALSE" in text
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(bundle / "ca.crt"), "-purpose", "sslclient",
                               str(cert)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The certificate is the request's key's.
    pub = lambda *a: subprocess.run(["openssl", *a], capture_output=True, check=True).stdout  # noqa: E731
    assert pub("x509", "-in", str(cert), "-noout", "-pubkey") == pub("pkey", "-in", str(own_key), "-pubout")
    shown = json.loads(fleet.firehook("device", "show", "sensor-1", "--json").stdout)
    serial = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-serial"], capture_output=True,
                            text=True, check=True).stdout.strip().split("=")[1].lstrip("0")
    assert [c["serial"].lstrip("0") for c in shown["certificates"]] == [serial]
    assert shown["state"] == "active"


def test_the_printed_command_connects_and_a_reader_gets_the_message(provisioned, version):
    sub = monitor_client(provisioned, version)
    try:
        assert sub.subscribe("devices/+/status").codes[0] < 0x80
        r = run(provisioned.publish)
        assert r.returncode == 0, f"{shlex.join(provisioned.publish)}:\n{r.stdout}{r.stderr}"
        p = sub.expect_publish()
        assert (p.topic, p.payload) == ("devices/sensor-1/status", b"online")
    finally:
        sub.close()


def test_a_rule_bound_to_an_attribute_works_for_the_device(provisioned, version):
    sub = monitor_client(provisioned, version)
    try:
        assert sub.subscribe("buildings/+/telemetry").codes[0] < 0x80
        own = replace_option(replace_option(provisioned.publish, "-t", "buildings/b1/telemetry"), "-m", "21.5")
        other = replace_option(own, "-t", "buildings/b2/telemetry")
        # QoS 1 so that a refusal is an answer (5.0: PUBACK 0x87; 3.1.1: the broker disconnects).
        run(other + ["-q", "1"])
        r = run(own + ["-q", "1"])
        assert r.returncode == 0, r.stdout + r.stderr
        p = sub.expect_publish()
        assert (p.topic, p.payload) == ("buildings/b1/telemetry", b"21.5")  # b2 never arrived
    finally:
        sub.close()


def refused_connect(fleet, version):
    c = TlsRawClient("127.0.0.1", fleet.port, fleet.context(fleet.sensor, "sensor-1"), version)
    try:
        return c.connect(client_id="sensor-1", expect_rc=None).reason
    finally:
        c.close()


def test_disable_refuses_the_next_connection_as_a_wrong_credential_and_enable_lets_it_back(provisioned, version):
    assert refused_connect(provisioned, version) == 0
    provisioned.firehook("device", "disable", "sensor-1")
    assert refused_connect(provisioned, version) == BAD_USER_OR_PASSWORD[version]
    r = run(provisioned.publish)
    assert r.returncode != 0
    listed = json.loads(provisioned.firehook("device", "list", "--json").stdout)["devices"]
    assert {d["name"]: d["state"] for d in listed} == {"monitor": "active", "sensor-1": "disabled"}
    provisioned.firehook("device", "enable", "sensor-1")
    assert refused_connect(provisioned, version) == 0
    assert run(provisioned.publish).returncode == 0
    shown = json.loads(provisioned.firehook("device", "show", "sensor-1", "--json").stdout)
    assert shown["last_address"] == "127.0.0.1" and shown["last_seen_at"]


def test_rotate_issues_a_new_certificate_and_remove_forgets_the_device(provisioned):
    own_key, csr = provisioned.make_request("sensor-1-new")
    out = provisioned.dir / "rotated"
    provisioned.firehook("device", "rotate", "sensor-1", "--csr", csr, "--out", out, "--grace", "1h")
    shown = json.loads(provisioned.firehook("device", "show", "sensor-1", "--json").stdout)
    assert len(shown["certificates"]) == 2
    assert shown["certificates"][0]["retire_at"] and shown["certificates"][1]["retire_at"] is None
    # In its grace period the old certificate still connects; the new one does too.
    assert refused_connect(provisioned, 5) == 0
    shutil.copyfile(own_key, out / "sensor-1.key")
    c = TlsRawClient("127.0.0.1", provisioned.port, provisioned.context(out, "sensor-1"), 5)
    try:
        c.connect(client_id="sensor-1")
    finally:
        c.close()
    listed = provisioned.firehook("device", "list").stdout
    assert listed.splitlines()[0].split()[:2] == ["NAME", "STATE"] and "sensor-1" in listed
    provisioned.firehook("device", "remove", "sensor-1")
    assert "sensor-1" not in provisioned.firehook("device", "list").stdout


def test_bad_input_exits_1_with_one_line(fleet):
    # Before `ca init`: no CA yet.
    _, csr = fleet.make_request("s")
    no_ca = fleet.firehook("device", "add", "s1", "--csr", csr, expect=1)
    assert "no CA yet" in no_ca.stderr
    fleet.init_ca()
    fleet.firehook("device", "add", "s1")
    cases = [
        (["device", "add", "s1"], "exists"),
        (["device", "add", "bad name"], "may hold only"),
        (["device", "add", ".hidden"], "must start with"),
        (["device", "add", "s2", "--csr", fleet.dir / "missing.csr"], "cannot read"),
        (["device", "add", "s2", "--attr", "novalue"], "expected KEY=VALUE"),
        (["device", "show", "nobody"], 'no device "nobody"'),
        (["device", "disable", "nobody"], 'no device "nobody"'),
        (["device", "rotate", "nobody"], 'no device "nobody"'),
        (["device", "remove", "nobody"], 'no device "nobody"'),
        (["device", "rotate", "s1", "--grace", "soon"], "--grace"),
    ]
    garbage = fleet.dir / "garbage.csr"
    garbage.write_text("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
    cases.append((["device", "add", "s3", "--csr", garbage], "not a PEM certificate signing request"))
    # A request whose signature does not match its key (altered after signing).
    _, good = fleet.make_request("t")
    der = subprocess.run(["openssl", "req", "-in", str(good), "-outform", "DER"], capture_output=True,
                         check=True).stdout
    tampered = bytearray(der)
    tampered[-5] ^= 0x01  # inside the signature
    forged = fleet.dir / "forged.csr"
    forged_der = fleet.dir / "forged.der"
    forged_der.write_bytes(bytes(tampered))
    pem = subprocess.run(["openssl", "req", "-inform", "DER", "-in", str(forged_der), "-out", str(forged)],
                         capture_output=True)
    if pem.returncode == 0:
        cases.append((["device", "add", "s4", "--csr", forged], "signature is wrong"))
    for args, message in cases:
        r = fleet.firehook(*args, expect=1)
        assert message in r.stderr, f"{args}: {r.stderr}"
        assert len(r.stderr.strip().splitlines()) == 1, f"{args}: {r.stderr}"
        assert r.stderr.startswith("firehook device: "), r.stderr
    assert [d["name"] for d in json.loads(fleet.firehook("device", "list", "--json").stdout)["devices"]] == ["s1"]


def test_a_device_without_a_request_gets_a_key_of_its_own(fleet):
    fleet.init_ca()
    r = fleet.firehook("device", "add", "gadget", "--role", "sensors")
    assert "-----BEGIN PRIVATE KEY-----" in r.stdout and "-----BEGIN CERTIFICATE-----" in r.stdout
    assert "mosquitto_pub" in r.stdout and "-i gadget" in r.stdout
    bundle = fleet.dir / "gadget-2"
    fleet.firehook("device", "add", "gadget-2", "--out", bundle)
    assert stat.S_IMODE((bundle / "gadget-2.key").stat().st_mode) == 0o600
    assert (bundle / "connect.txt").read_text().startswith("mosquitto_pub ")
    assert os.path.exists(bundle / "broker-ca.crt")


def test_an_imported_intermediate_issues_certificates_that_carry_it(fleet):
    d = fleet.dir / "pki"
    d.mkdir()

    def ossl(*args):
        subprocess.run(["openssl", *map(str, args)], cwd=d, check=True, capture_output=True, timeout=30)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", "root.key", "-out", "root.crt", "-subj", "/CN=Company root", "-days", 30)
    ossl("req", "-new", *ec, "-keyout", "inter.key", "-out", "inter.csr", "-subj", "/CN=Company devices")
    (d / "ext.cnf").write_text("[v3]\nbasicConstraints = critical,CA:TRUE,pathlen:0\n"
                               "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
                               "authorityKeyIdentifier = keyid\n")
    ossl("x509", "-req", "-in", "inter.csr", "-CA", "root.crt", "-CAkey", "root.key", "-CAcreateserial",
         "-days", 20, "-extfile", "ext.cnf", "-extensions", "v3", "-out", "inter.crt")
    (d / "chain.crt").write_text((d / "inter.crt").read_text() + (d / "root.crt").read_text())
    # A key that is not the certificate's is refused, and nothing is written.
    refused = fleet.firehook("ca", "init", "--import-cert", d / "root.crt", "--import-key", d / "inter.key",
                             expect=1)
    assert "is not the key of" in refused.stderr
    assert not (fleet.state / "ca" / "ca.key").exists()
    fleet.firehook("ca", "init", "--import-cert", d / "chain.crt", "--import-key", d / "inter.key")
    bundle = fleet.dir / "d1"
    fleet.firehook("device", "add", "d1", "--out", bundle, "--days", 5)
    # The device presents its certificate and the intermediate: a verifier that knows only the root
    # builds the chain.
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(d / "root.crt"), "-untrusted",
                               str(bundle / "d1.crt"), "-purpose", "sslclient", str(bundle / "d1.crt")],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # A certificate may not outlive the intermediate.
    too_long = fleet.firehook("device", "add", "d2", "--days", 365, expect=1)
    assert "outlive the CA" in too_long.stderr


def refused_while_disabled(fleet, name, login, version, also_while_disabled):
    """`login()` (a CONNACK reason) succeeds, is refused as a wrong credential while device `name`
    is disabled (and `also_while_disabled()` holds then), and succeeds again once it is enabled."""
    assert login() == 0
    fleet.firehook("device", "disable", name)
    assert login() == BAD_USER_OR_PASSWORD[version]
    assert also_while_disabled()
    fleet.firehook("device", "enable", name)
    assert login() == 0


def test_a_linked_password_user_is_refused_while_its_device_is_disabled(fleet, start_broker, raw, version):
    fleet.init_ca()
    r = subprocess.run([firehook_binary(), "user", "add", "gw-user", "--password-stdin", "-c", str(fleet.config)],
                       input="s3cret\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    fleet.firehook("device", "add", "gw", "--username", "gw-user")
    overrides = dict(fleet.overrides)
    overrides["listener"] = fleet.overrides["listener"] + [
        {"name": "plain", "address": "127.0.0.1", "port": 0, "protocol": "mqtt", "auth": ["password"],
         "allow_anonymous": False}]
    broker = start_broker(overrides)

    def login(password=b"s3cret"):
        c = raw(broker, version, listener="plain")
        try:
            return c.connect(client_id="gw", username="gw-user", password=password, expect_rc=None).reason
        finally:
            c.close()

    refused_while_disabled(fleet, "gw", login, version,
                           # the same answer as a wrong password
                           lambda: login(b"wrong") == BAD_USER_OR_PASSWORD[version])


# ----------------------------------------------------------------------------------------------
# Revocation


def test_revoke_drops_every_credential_of_a_device_within_a_second_and_for_good(fleet, start_broker, raw, tmp_path):
    """One device with all three credentials (its certificate, a linked password user, a token
    subject), each connected: `device revoke` drops the three (5.0 DISCONNECT 0x98) within a second
    of the command's end, measured here; none of them gets back in; the CA's CRL lists its
    certificate (openssl verify says so) and the listener that names the CRL refuses the handshake."""
    fleet.init_ca()
    crl = fleet.state / "ca" / "crl.pem"
    assert crl.exists(), "ca init writes an empty CRL, so a listener can name it from the start"
    (tmp_path / "jwt").mkdir()
    private_key, public_key = make_jwt_key(tmp_path / "jwt")
    overrides = dict(fleet.overrides)
    tls = dict(overrides["listener"][0]["tls"], crl=str(crl))
    overrides["listener"] = [
        dict(overrides["listener"][0], tls=tls),
        {"name": "plain", "address": "127.0.0.1", "port": 0, "protocol": "mqtt", "auth": ["password"],
         "allow_anonymous": False},
        {"name": "tokens", "address": "127.0.0.1", "port": 0, "protocol": "mqtt", "auth": ["jwt"],
         "allow_anonymous": False},
    ]
    overrides["auth"] = dict(overrides["auth"], jwt={"public_keys": [str(public_key)], "issuer": ISSUER,
                                                     "audience": AUDIENCE})
    r = subprocess.run([firehook_binary(), "user", "add", "gw-user", "--password-stdin", "-c", str(fleet.config)],
                       input="s3cret\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    bundle = tmp_path / "gw-bundle"
    fleet.firehook("device", "add", "gw", "--out", bundle, "--username", "gw-user", "--token-subject", "gw-token")
    broker = start_broker(overrides)
    port = broker.listeners["tls"][1]

    def token():
        now = int(time.time())
        return jwt.encode({"sub": "gw-token", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600},
                          private_key, algorithm="RS256").encode()

    def by_certificate():
        c = TlsRawClient("127.0.0.1", port, fleet.context(bundle, "gw"), V5)
        return c, c.connect(client_id="gw", expect_rc=None).reason

    def by_password():
        c = raw(broker, V5, listener="plain")
        return c, c.connect(client_id="gw-p", username="gw-user", password=b"s3cret", expect_rc=None).reason

    def by_token():
        c = raw(broker, V5, listener="tokens")
        return c, c.connect(client_id="gw-t", username="gw", password=token(), expect_rc=None).reason

    live = []
    for connect in (by_certificate, by_password, by_token):
        c, rc = connect()
        assert rc == 0, connect.__name__
        live.append(c)
    out = fleet.firehook("device", "revoke", "gw", "--reason", "stolen").stdout
    revoked_at = time.monotonic()
    assert "banned certificate" in out and "banned username gw-user" in out and "banned token_subject gw-token" in out
    for c in live:
        got = c.wait_closed(timeout=3)
        took = time.monotonic() - revoked_at
        assert [(p.type, p.reason) for p in got] == [(DISCONNECT, 0x98)], got
        assert took < 1.0, f"dropped {took:.2f} s after the revocation"
    # None of them gets back in: the password user gets 0x8A Banned at CONNECT, before its password
    # is checked; the token 0x86, as a bad token, once its signature is (the registry's answer for
    # a device that is not active, which comes before the ban on its subject) ...
    for connect, refused in ((by_password, 0x8A), (by_token, 0x86)):
        c, rc = connect()
        c.close()
        assert rc == refused, (connect.__name__, rc)
    # ... and the certificate not even through the TLS handshake, once the listener has read the CRL.
    verify = run(["openssl", "verify", "-crl_check", "-CAfile", str(fleet.state / "ca" / "ca.crt"), "-CRLfile",
                  str(crl), str(bundle / "gw.crt")])
    assert "certificate revoked" in verify.stdout + verify.stderr, verify
    def certificate_refusal():
        try:
            c = TlsRawClient("127.0.0.1", port, fleet.context(bundle, "gw"), V5)
        except (ssl.SSLError, OSError) as e:
            return f"handshake: {e}"
        try:
            c.send(connect_packet(V5, "gw"))
            got = c.wait_closed()
            return f"answered {got!r}" if got else f"after the handshake: {c.tls_error}"
        finally:
            c.close()

    deadline = time.monotonic() + 5
    while "revoked" not in (refused := certificate_refusal()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "revoked" in refused.lower(), refused
    # For good: the registry says so and refuses to enable or remove it.
    assert json.loads(fleet.firehook("device", "show", "gw", "--json").stdout)["state"] == "revoked"
    assert "revoked" in fleet.firehook("device", "enable", "gw", expect=1).stderr
    assert "revoked" in fleet.firehook("device", "remove", "gw", expect=1).stderr
    e = broker.wait_for_event("ban", subject="gw-token", change="added")
    assert e["source"] == "device revoke" and "device gw revoked" in e["reason"] and "stolen" in e["reason"], e


def test_revoke_ends_the_sessions_of_the_device_and_their_queued_messages(fleet, start_broker, tmp_path):
    """A revoked device's persistent session goes, offline as it is, with the messages queued for it:
    $SYS/broker/messages/queued (read by another device) falls from 3 to 0."""
    fleet.init_ca()
    bundles = {}
    for name, extra in (("sensor-1", ["--role", "sensors", "--attr", "building=b1"]),
                        ("reader", ["--role", "monitor"]), ("watcher", ["--role", "monitor"])):
        bundles[name] = tmp_path / f"{name}-bundle"
        fleet.firehook("device", "add", name, "--out", bundles[name], *extra)
    broker = start_broker(dict(fleet.overrides, broker=dict(fleet.overrides["broker"], sys_interval=1)))
    port = broker.listeners["tls"][1]

    def client(name):
        return TlsRawClient("127.0.0.1", port, fleet.context(bundles[name], name), V5)

    reader = client("reader")
    reader.connect(client_id="reader", clean=False, props={"SessionExpiryInterval": 600})
    assert reader.subscribe([("buildings/+/telemetry", 1)]).codes == [1]
    reader.close()
    broker.wait_for_event("client_disconnected", client_id="reader")
    sensor = client("sensor-1")
    watcher = client("watcher")
    try:
        sensor.connect(client_id="sensor-1")
        for i in range(3):
            sensor.publish("buildings/b1/telemetry", f"{i}".encode(), qos=1)
            assert sensor.expect(PUBACK).reason == 0
        watcher.connect(client_id="watcher")
        watcher.subscribe([("$SYS/broker/messages/queued", 0)])

        def queued_becomes(n):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                value = int(watcher.expect_publish(timeout=5).payload)
                if value == n:
                    return
            pytest.fail(f"$SYS/broker/messages/queued did not become {n}")

        queued_becomes(3)
        fleet.firehook("device", "revoke", "reader")
        queued_becomes(0)
    finally:
        sensor.close()
        watcher.close()


# ----------------------------------------------------------------------------------------------
# The admin endpoint's /devices


def admin_call(broker, token, method, path, body=None):
    host, port = broker.listeners["admin"]
    cmd = ["curl", "-s", "-S", "-o", "-", "-w", "\n%{http_code}", "-X", method, f"http://{host}:{port}{path}"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", body if isinstance(body, str) else json.dumps(body)]
    p = run(cmd)
    text, _, status = p.stdout.rpartition("\n")
    return int(status), json.loads(text) if text else None


def test_the_admin_endpoint_adds_shows_and_revokes_devices(fleet, start_broker, tmp_path):
    """curl on /devices: POST a device's CSR (201: its certificate, which verifies against the CA),
    GET the list and one device, bad input answered 4xx with a JSON error, and POST .../revoke
    drops the device's live connection (0x98) within a second; every request is an audit event."""
    fleet.init_ca()
    overrides = dict(fleet.overrides, admin={"port": 0})
    fleet.config, _ = write_config(fleet.dir / "cli", overrides)
    token = fleet.firehook("admin", "token", "add", "ops").stdout.strip()
    broker = start_broker(overrides)
    own_key, csr = fleet.make_request("valve-7", cn="anything")

    assert admin_call(broker, None, "GET", "/devices")[0] == 401
    body = {"name": "valve-7", "roles": ["sensors"], "attributes": {"building": "b1"}, "csr": csr.read_text()}
    status, added = admin_call(broker, token, "POST", "/devices", body)
    assert status == 201, added
    assert added["device"]["name"] == "valve-7" and added["device"]["roles"] == ["sensors"], added
    bundle = tmp_path / "valve-7"
    bundle.mkdir()
    (bundle / "valve-7.crt").write_text(added["certificate"])
    (bundle / "ca.crt").write_text(added["ca"])
    shutil.copyfile(own_key, bundle / "valve-7.key")
    verify = run(["openssl", "verify", "-CAfile", str(bundle / "ca.crt"), str(bundle / "valve-7.crt")])
    assert verify.returncode == 0, verify.stdout + verify.stderr

    for bad, code, words in ((dict(body), 409, "exists"),
                             (dict(body, name="v8", csr="not a request"), 400, "csr"),
                             ({"name": "v9", "roles": ["sensors"]}, 400, "csr"),
                             (dict(body, name="v10", colour="red"), 400, "unknown member"),
                             (dict(body, name="../etc"), 400, "name"),
                             ("[1, 2]", 400, "JSON object")):
        status, answer = admin_call(broker, token, "POST", "/devices", bad)
        assert status == code and words in answer["error"], (bad, status, answer)
    status, listed = admin_call(broker, token, "GET", "/devices")
    assert status == 200 and [d["name"] for d in listed["devices"]] == ["valve-7"], listed
    assert admin_call(broker, token, "GET", "/devices/valve-7")[1]["state"] == "active"
    assert admin_call(broker, token, "GET", "/devices/nope")[0] == 404
    assert admin_call(broker, token, "PUT", "/devices/valve-7")[0] == 405

    port = broker.listeners["tls"][1]
    ctx = ssl.create_default_context(cafile=str(fleet.pki.ca))
    ctx.load_cert_chain(str(bundle / "valve-7.crt"), str(bundle / "valve-7.key"))
    live = TlsRawClient("127.0.0.1", port, ctx, V5)
    try:
        assert live.connect(client_id="valve-7").reason == 0
        status, revoked = admin_call(broker, token, "POST", "/devices/valve-7/revoke", {"reason": "leaking"})
        revoked_at = time.monotonic()
        assert status == 200 and revoked["device"]["state"] == "revoked", revoked
        assert {b["kind"] for b in revoked["bans"]} == {"client_id", "certificate"}, revoked
        got = live.wait_closed(timeout=3)
        assert [(p.type, p.reason) for p in got] == [(DISCONNECT, 0x98)], got
        assert time.monotonic() - revoked_at < 1.0
    finally:
        live.close()
    assert admin_call(broker, token, "DELETE", "/devices/valve-7")[0] == 409
    assert admin_call(broker, token, "POST", "/devices/valve-7/enable")[0] == 409
    e = broker.wait_for_event("ban", subject="valve-7", change="added")
    assert "device valve-7 revoked by ops: leaking" == e["reason"], e
    broker.stop()
    records = [json.loads(line) for f in sorted((fleet.state / "audit").glob("audit*.log"))
               for line in f.read_text().splitlines() if line.strip()]
    done = {r["subject"] for r in records if r.get("event") == "admin_request" and r.get("identity") == "ops"}
    assert {"POST /devices", "POST /devices/valve-7/revoke", "GET /devices/valve-7"} <= done, done


def test_a_token_of_a_disabled_device_is_refused_as_a_bad_token(fleet, start_broker, raw, tmp_path, version):
    (tmp_path / "jwt").mkdir()
    private_key, public_key = make_jwt_key(tmp_path / "jwt")
    overrides = dict(fleet.overrides, listener=[
        {"name": "tokens", "address": "127.0.0.1", "port": 0, "protocol": "mqtt", "auth": ["jwt"],
         "allow_anonymous": False}])
    overrides["auth"] = dict(overrides["auth"], jwt={"public_keys": [str(public_key)], "issuer": ISSUER,
                                                     "audience": AUDIENCE})
    fleet.init_ca()
    fleet.firehook("device", "add", "meter-2", "--token-subject", "meter-2-token")
    broker = start_broker(overrides)

    def login():
        now = int(time.time())
        token = jwt.encode({"sub": "meter-2-token", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600},
                           private_key, algorithm="RS256").encode()
        c = raw(broker, version, listener="tokens")
        try:
            return c.connect(client_id="meter-2", username="meter-2", password=token, expect_rc=None).reason
        finally:
            c.close()

    refused_while_disabled(fleet, "meter-2", login, version, lambda: 'token subject of device "meter-2", which is '
                           'disabled' in broker.wait_for_event("auth_denied", client_id="meter-2")["reason"])
