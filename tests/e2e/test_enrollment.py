"""Fleet enrollment over MQTT end to end (issue 15, "Fleet enrollment over MQTT"; docs/provisioning.md).

The flow a factory follows: `firehook ca init`, `firehook device enroll-token --template thermostat`,
and a device that has only its token makes its key and request with `openssl req`, connects to the
enrollment listener (TLS, server-authenticated, no client certificate) with user name = its name and
password = the token, subscribes to `$enroll/<name>/response`, publishes the request on
`$enroll/<name>/request`, and gets its certificate. That certificate then connects with
mosquitto_pub to the device listener (client certificates required) with the template's rights.

Shown here: a token works once and only once; the claim identity can do nothing else; an expired
token and a template mismatch are refused with a reason; mosquitto_rr (the documented one-command
example) enrols too.
"""

import json
import subprocess
import time

import pytest

from conftest import firehook_binary, write_config
from pahoclient import V5, V311, Client
from pki import pki  # noqa: F401  (a fixture)
from test_devices import Fleet

BAD_USER_OR_PASSWORD = {V311: 0x04, V5: 0x86}


class Factory(Fleet):
    """test_devices' fleet (its CA, topics file and device listener, named "devices" here) with two
    templates and a listener where devices enrol with a token (TLS, no client certificate)."""

    def __init__(self, tmp_path, pki):
        super().__init__(tmp_path, pki)
        devices = self.overrides["listener"][0]
        devices["name"] = "devices"
        self.overrides["enrollment"] = {"template": [
            {"name": "thermostat", "roles": ["sensors"], "attributes": {"building": "b1"}, "days": 30},
            {"name": "gateway", "roles": ["monitor"]},
        ]}
        self.overrides["listener"].append({
            "name": "enroll", "address": "127.0.0.1", "port": 0, "protocol": "mqtts", "auth": ["enrollment"],
            "allow_anonymous": False,
            "tls": {"cert": devices["tls"]["cert"], "key": devices["tls"]["key"], "client_certificates": "none"}})
        self.config, _ = write_config(tmp_path / "cli", self.overrides)
        self.init_ca()
        self.broker_ca = pki.ca  # devices check the broker's certificate with the test PKI's CA

    def tokens(self, template="thermostat", count=1, expires="1h"):
        out = self.firehook("device", "enroll-token", "--template", template, "--count", count, "--expires", expires)
        tokens = out.stdout.split()
        assert len(tokens) == count and all(t.startswith("fhe1_") for t in tokens), out.stdout
        return tokens

    def request(self, name):
        """The key and PEM request a device makes for itself; the CN it asks for is ignored."""
        key, csr = self.make_request(name, cn="admin")
        return key, csr.read_text()

    def claim(self, name, token, version=V5, expect_rc=0):
        """A paho client on the enrollment listener, logged in with the token."""
        c = Client(self.broker, version, client_id=name, listener="enroll")
        c.c.username_pw_set(name, token)
        c.c.tls_set(ca_certs=str(self.broker_ca))
        c.connect(expect_rc=expect_rc)
        return c

    def enrol(self, name, token, payload=None, version=V5):
        """The whole exchange; returns the parsed response."""
        key, csr = self.request(name)
        c = self.claim(name, token, version)
        try:
            assert c.subscribe(f"$enroll/{name}/response", qos=1) == [1]
            body = json.dumps({"csr": csr}) if payload is None else payload(csr)
            c.publish(f"$enroll/{name}/request", body, qos=1)
            answer = json.loads(c.expect().payload)
            # One request per connection: the broker closes it once it has answered.
            c.wait_disconnected()
            return answer, key
        finally:
            c.close()


@pytest.fixture
def factory(tmp_path, pki, start_broker):
    f = Factory(tmp_path, pki)
    f.broker = start_broker(f.overrides)
    return f


def openssl_text(pem):
    return subprocess.run(["openssl", "x509", "-noout", "-text", "-subject"], input=pem, capture_output=True,
                          text=True, check=True).stdout


# ----------------------------------------------------------------------------------------------


def test_a_token_enrols_once_and_the_certificate_has_the_templates_rights(factory, version):
    [token] = factory.tokens()
    answer, key = factory.enrol("thermo-1", token, version=version)
    assert answer["status"] == "issued", answer
    assert (answer["device"], answer["template"], answer["roles"]) == ("thermo-1", "thermostat", ["sensors"])
    assert answer["attributes"] == {"building": "b1"}
    text = openssl_text(answer["certificate"])
    assert "subject=CN = thermo-1" in text  # never the CN the request asked for
    assert "TLS Web Client Authentication" in text
    e = factory.broker.wait_for_event("enrollment_issued", identity="thermo-1")
    assert e["method"] == "enrollment" and e["subject"] == "thermostat" and e["reason"].startswith("certificate serial")
    shown = json.loads(factory.firehook("device", "show", "thermo-1", "--json").stdout)
    assert shown["roles"] == ["sensors"] and shown["attributes"] == {"building": "b1"}

    # Once only: the same token, for another name too, is refused at CONNECT, with the reason logged.
    factory.claim("thermo-2", token, version, expect_rc=BAD_USER_OR_PASSWORD[version]).close()
    denied = factory.broker.wait_for_event("auth_denied", username="thermo-2")
    assert denied["reason"] == "token already used" and denied["method"] == "enrollment", denied

    # The issued certificate connects to the device listener and has the template's rights: role
    # sensors, and attribute building = b1 for the topic bound to attr.building.
    cert = factory.dir / "thermo-1.crt"
    cert.write_text(answer["certificate"])
    host, port = factory.broker.listeners["devices"]
    pub = ["mosquitto_pub", "--cafile", str(factory.broker_ca), "--cert", str(cert), "--key", str(key), "-h", host,
           "-p", str(port), "-i", "thermo-1", "-V", "5", "-q", "1"]
    for topic in ["devices/thermo-1/status", "buildings/b1/telemetry", "devices/thermo-9/status",
                  "buildings/b2/telemetry"]:
        r = subprocess.run(pub + ["-t", topic, "-m", "x"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 or topic.endswith(("9/status", "b2/telemetry")), r.stdout + r.stderr
    for refused in ["devices/thermo-9/status", "buildings/b2/telemetry"]:
        e = factory.broker.wait_for_event("publish_refused", identity="thermo-1", topic=refused)
        assert e["method"] == "certificate", e
    assert not [e for e in factory.broker.events("publish_refused", identity="thermo-1")
                if e["topic"] in ("devices/thermo-1/status", "buildings/b1/telemetry")]
    assert factory.broker.events("auth_allowed", identity="thermo-1", method="certificate")


def test_the_claim_identity_can_do_nothing_else(factory):
    [token] = factory.tokens()
    c = factory.claim("thermo-3", token)
    try:
        for topic in ["#", "$enroll/#", "$enroll/other/response", "$enroll/thermo-3/request", "devices/+/status"]:
            assert c.subscribe(topic, qos=1) == [0x87], topic
        for topic in ["devices/thermo-3/status", "$enroll/other/request", "$enroll/thermo-3/response",
                      "buildings/b1/telemetry"]:
            c.publish(topic, b"x", qos=1)
            e = factory.broker.wait_for_event("publish_refused", topic=topic)
            assert e["method"] == "enrollment" and e["identity"] == "thermo-3", e
        # Retaining its request is refused too (the rights say retain = false).
        c.publish("$enroll/thermo-3/request", b"x", qos=1, retain=True)
        factory.broker.wait_for_event("publish_refused", topic="$enroll/thermo-3/request")
    finally:
        c.close()
    # None of that spent the token.
    answer, _ = factory.enrol("thermo-3", token)
    assert answer["status"] == "issued", answer


def test_an_expired_or_unknown_token_is_refused(factory, version):
    [token] = factory.tokens(expires="1s")
    time.sleep(2.1)
    factory.claim("late-1", token, version, expect_rc=BAD_USER_OR_PASSWORD[version]).close()
    e = factory.broker.wait_for_event("auth_denied", username="late-1")
    assert e["reason"] == "token expired" and e["method"] == "enrollment", e
    factory.claim("late-2", "fhe1_" + "0" * 32, version, expect_rc=BAD_USER_OR_PASSWORD[version]).close()
    assert factory.broker.wait_for_event("auth_denied", username="late-2")["reason"] == "unknown token"


def test_a_request_for_another_template_is_refused_with_a_reason_and_keeps_the_token(factory):
    [token] = factory.tokens()
    answer, _ = factory.enrol("thermo-4", token, lambda csr: json.dumps({"csr": csr, "template": "gateway"}))
    assert answer == {"status": "refused", "reason": 'template mismatch: the token enrols into template '
                                                     '"thermostat", not "gateway"'}, answer
    answer, _ = factory.enrol("thermo-4", token, lambda csr: json.dumps({"csr": csr, "roles": ["monitor"]}))
    assert answer["status"] == "refused" and answer["reason"].startswith("roles mismatch"), answer
    e = factory.broker.wait_for_event("enrollment_refused", identity="thermo-4")
    assert e["subject"] == "thermostat" and "mismatch" in e["reason"], e
    assert "thermo-4" not in factory.firehook("device", "list").stdout
    answer, _ = factory.enrol("thermo-4", token, lambda csr: json.dumps({"csr": csr, "template": "thermostat"}))
    assert answer["status"] == "issued", answer


def test_a_bad_request_is_refused_and_a_large_one_too(factory):
    [token] = factory.tokens()
    answer, _ = factory.enrol("thermo-5", token, lambda csr: "not a request")
    assert answer["status"] == "refused" and "neither a JSON object nor a PEM" in answer["reason"], answer
    answer, _ = factory.enrol("thermo-5", token, lambda csr: json.dumps({"csr": csr, "pad": "x" * 5000}))
    assert answer == {"status": "refused", "reason": "request larger than 4096 bytes"}, answer


def test_the_documented_mosquitto_rr_example_enrols(factory):
    [token] = factory.tokens()
    key, _ = factory.request("thermo-6")
    host, port = factory.broker.listeners["enroll"]
    r = subprocess.run(["mosquitto_rr", "-V", "5", "--cafile", str(factory.broker_ca), "-h", host, "-p", str(port),
                        "-u", "thermo-6", "-P", token, "-q", "1", "-t", "$enroll/thermo-6/request",
                        "-e", "$enroll/thermo-6/response", "-m", (factory.dir / "thermo-6.csr").read_text(), "-W", "10"],
                       capture_output=True, text=True, timeout=30)
    answer = json.loads(r.stdout)
    assert answer["status"] == "issued", r.stdout + r.stderr
    cert = factory.dir / "thermo-6.crt"
    cert.write_text(answer["certificate"])
    (factory.dir / "device-ca.crt").write_text(answer["ca"])
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(factory.dir / "device-ca.crt"), "-purpose",
                               "sslclient", str(cert)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    host, port = factory.broker.listeners["devices"]
    pub = subprocess.run(["mosquitto_pub", "--cafile", str(factory.broker_ca), "--cert", str(cert), "--key", str(key),
                          "-h", host, "-p", str(port), "-i", "thermo-6", "-t", "buildings/b1/telemetry", "-m", "21.5",
                          "-q", "1"], capture_output=True, text=True, timeout=30)
    assert pub.returncode == 0, pub.stdout + pub.stderr


def test_enroll_token_refuses_bad_input(tmp_path, pki):
    f = Factory(tmp_path, pki)
    for args, message in [
        (["--template", "nope"], 'no [[enrollment.template]] named "nope"'),
        (["--template", "thermostat", "--expires", "soon"], "--expires"),
        (["--template", "thermostat", "--expires", "400d"], "--expires"),
    ]:
        r = f.firehook("device", "enroll-token", *args, expect=1)
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_listener_with_enrollment_needs_a_template_and_tls(tmp_path, pki):
    f = Factory(tmp_path, pki)
    overrides = dict(f.overrides)
    overrides["enrollment"] = {}
    overrides["listener"] = [{"name": "enroll", "address": "127.0.0.1", "port": 0, "protocol": "mqtt",
                              "auth": ["enrollment"], "allow_anonymous": False}]
    path, lines = write_config(tmp_path, overrides, name="bad.toml")
    r = subprocess.run([firehook_binary(), "check", "-c", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "needs at least one [[enrollment.template]]" in r.stderr + r.stdout
    assert "needs a TLS listener" in r.stderr + r.stdout
    assert f"bad.toml:{lines['listener[0].auth']}:" in r.stderr + r.stdout
