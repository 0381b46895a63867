"""The topics file enforced by the broker, end to end (issue 5): who may publish and subscribe to
what, over TLS, with identities from client certificates, credential-store attributes and token
claims (topics_helpers.py sets up the broker, its three listeners and the clients).

What a refused client sees (docs/topics.md):
- PUBLISH without a grant, denied, above max_qos or retained where retain = false: 5.0 PUBACK /
  PUBREC 0x87; 3.1.1 acknowledged as usual and dropped: no subscriber receives it. With
  `[authorization] denied_publish = "disconnect"`, the client is disconnected instead (5.0:
  DISCONNECT 0x87 first).
- SUBSCRIBE filter larger than the grants: SUBACK 0x87 (5.0) / 0x80 (3.1.1), never narrowed; a
  filter that only overlaps a denied area is granted and the denied topics are withheld.
- A reload (SIGHUP or a change of the file) removes live subscriptions that are no longer allowed.

A message that must not arrive is checked by a later one that must: the subscriber's next message is
the later one, and nothing else comes within a quiet window.
"""

import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import START_TIMEOUT, firehook_binary
from pahoclient import QUIET, V311, V5, unique
from pki import pki  # noqa: F401  (a fixture)
from rawclient import DISCONNECT, PUBACK, PUBCOMP, PUBREC, PUBREL, sub_options
from topics_helpers import RELOAD_TIMEOUT, replace_file, topics_toml
from topics_helpers import certs, fleet, jwt_key, make_fleet, users_db  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[2]
SUB_REFUSED = {V5: 0x87, V311: 0x80}
NOT_AUTHORIZED = 0x87
VERSION_FLAG = {V5: "mqttv5", V311: "mqttv311"}



def temperature(building, room):
    return f"buildings/{building}/rooms/{room}/temperature"


# ----------------------------------------------------------------------------------------------
# Fixtures


# ----------------------------------------------------------------------------------------------
# Raw-client checks of the acknowledgements


def publish_refused(r, topic, qos=1, retain=False):
    """Publishes and checks the refusal a client sees: 5.0 PUBACK/PUBREC 0x87; 3.1.1 the usual
    acknowledgement (a refusal cannot be told apart there). QoS 0 has no acknowledgement."""
    pid = r.publish(topic, b"must not arrive", qos, retain)
    if qos == 0:
        return
    ack = r.expect(PUBACK if qos == 1 else PUBREC)
    assert ack.pid == pid, f"{ack!r} for packet id {pid}"
    if r.version == V5:
        assert ack.reason == NOT_AUTHORIZED, f"publish to {topic} at QoS {qos}: {ack!r}, expected reason 0x87"
    else:
        assert len(ack.body) == 2, f"3.1.1 acknowledgement must be plain: {ack!r}"
        if qos == 2:
            r.ack(PUBREL, pid)
            assert r.expect(PUBCOMP).pid == pid


def publish_accepted(r, topic, payload, qos=1, retain=False):
    pid = r.publish(topic, payload, qos, retain)
    if qos == 0:
        return
    ack = r.expect(PUBACK if qos == 1 else PUBREC)
    assert ack.pid == pid
    assert ack.reason == 0, f"publish to {topic} at QoS {qos}: {ack!r}, expected success"
    if qos == 2:
        r.ack(PUBREL, pid)
        assert r.expect(PUBCOMP).pid == pid


def only_message(sub, topic, payload):
    """The subscriber's next message is (topic, payload), and nothing else comes after it."""
    m = sub.expect()
    assert (m.topic, m.payload) == (topic, payload), f"{sub.client_id} got {m.topic} {m.payload!r} first"
    sub.expect_none()


def subscribe_codes(r, filters, qos=1):
    ack = r.subscribe([(f, sub_options(qos)) for f in filters])
    return ack.codes


# ----------------------------------------------------------------------------------------------
# Publish: a thermostat and its own room


@pytest.mark.parametrize("source", ["attr", "claim"])
def test_thermostat_publishes_to_its_room(fleet, version, source):
    """A thermostat with building b1 and room r1 (credential-store attributes, or token claims)
    publishes to its room; the dashboard receives it."""
    dash = fleet.dashboard(version)
    assert dash.subscribe("buildings/+/rooms/+/temperature", 1) == [1]
    if source == "attr":
        t = fleet.user("t-b1-r1", version)
    else:
        t = fleet.with_token("t-tok", version, kind="thermostat", building="b1", room="r1")
    t.publish(temperature("b1", "r1"), b'{"t": 21.5}', 1)
    m = dash.expect()
    assert (m.topic, m.payload, m.qos) == (temperature("b1", "r1"), b'{"t": 21.5}', 1)


@pytest.mark.parametrize("source", ["attr", "claim"])
def test_thermostat_refused_another_room_and_another_building(fleet, version, source):
    dash = fleet.dashboard()
    assert dash.subscribe("#", 1) == [1]
    if source == "attr":
        r = fleet.raw_user("t-b1-r1", version)
    else:
        r = fleet.raw_token("t-tok", version, kind="thermostat", building="b1", room="r1")
    for qos in (1, 0):
        publish_refused(r, temperature("b1", "r2"), qos)  # another room
        publish_refused(r, temperature("b2", "r1"), qos)  # another building
    publish_refused(r, "buildings/b1/rooms/r1/setpoint", 1)  # its room, but not a topic it may publish
    publish_refused(r, "somewhere/else", 1)  # no topic at all: deny by default
    assert r.is_open(), "a refused publish must not end the connection by default"
    publish_accepted(r, temperature("b1", "r1"), b"mine")
    only_message(dash, temperature("b1", "r1"), b"mine")


def test_max_qos_of_a_topic_is_enforced(fleet, version):
    """temperature has max_qos = 1: a QoS 2 PUBLISH to its own room is refused (5.0 PUBREC 0x87;
    3.1.1 the QoS 2 flow completes and the message is dropped); lobby/announcements has max_qos = 0."""
    dash = fleet.dashboard()
    assert dash.subscribe("#", 2) == [2]
    t = fleet.raw_user("t-b1-r1", version)
    publish_refused(t, temperature("b1", "r1"), qos=2)
    d = fleet.raw_token("dashboard", version, roles=["dashboard"])
    publish_refused(d, "lobby/announcements", qos=1)
    publish_accepted(d, "lobby/announcements", b"qos 0 is fine", qos=0)
    only_message(dash, "lobby/announcements", b"qos 0 is fine")
    publish_accepted(t, temperature("b1", "r1"), b"qos 1 is fine", qos=1)
    only_message(dash, temperature("b1", "r1"), b"qos 1 is fine")


def test_retain_rule_of_a_topic_is_enforced(fleet, version):
    """lobby/announcements has retain = false: a retained PUBLISH is refused and not stored;
    temperature has retain = true: it is stored and a later subscriber gets it."""
    d = fleet.raw_token("dashboard", version, roles=["dashboard"])
    publish_refused(d, "lobby/announcements", qos=0, retain=True)
    t = fleet.raw_user("t-b1-r1", version)
    publish_accepted(t, temperature("b1", "r1"), b"retained", qos=1, retain=True)
    late = fleet.dashboard()
    codes = late.subscribe([("lobby/announcements", 1), (temperature("b1", "r1"), 1)])
    assert all(c < 0x80 for c in codes), codes
    m = late.expect()
    assert (m.topic, m.payload, m.retain) == (temperature("b1", "r1"), b"retained", True)
    late.expect_none()


def test_certificate_thermostat_publishes_only_its_own_status(fleet, version):
    """OU=thermostats gives the role; devices/{client_id}/status with client_id = the CN (must_match)."""
    dash = fleet.dashboard()
    assert dash.subscribe("devices/+/status", 1) == [1]
    t = fleet.raw_cert(fleet.certs["t-cert-1"], version)
    publish_refused(t, "devices/t-cert-2/status")  # another device's status
    publish_refused(t, temperature("b1", "r1"))  # a certificate carries no building or room
    plain = fleet.raw_cert(fleet.certs["plain-1"], version)
    publish_refused(plain, "devices/plain-1/status")  # OU=devices: no role, no rights
    publish_accepted(t, "devices/t-cert-1/status", b"online")
    only_message(dash, "devices/t-cert-1/status", b"online")


def test_paho_thermostat_over_certificate(fleet, version):
    dash = fleet.dashboard(version)
    assert dash.subscribe("devices/#", 1) == [1]
    t = fleet.with_cert(fleet.certs["t-cert-2"], version)
    t.publish("devices/t-cert-1/status", b"not mine", 1)
    t.publish("devices/t-cert-2/status", b"online", 1)
    only_message(dash, "devices/t-cert-2/status", b"online")


@pytest.mark.parametrize("qos", [0, 1])
def test_denied_publish_disconnects_when_configured(make_fleet, version, qos):
    f = make_fleet({"authorization": {"denied_publish": "disconnect"}})
    dash = f.dashboard()
    assert dash.subscribe("#", 1) == [1]
    r = f.raw_user("t-b1-r1", version)
    publish_accepted(r, temperature("b1", "r1"), b"allowed")  # an allowed one still works
    only_message(dash, temperature("b1", "r1"), b"allowed")
    r.publish(temperature("b1", "r2"), b"must not arrive", qos)
    got = r.wait_closed()
    if version == V5:
        assert [p.type for p in got] == [DISCONNECT], f"expected DISCONNECT then close, got {got!r}"
        assert got[0].reason == NOT_AUTHORIZED, f"DISCONNECT {got[0].reason:#04x}, expected 0x87"
    else:
        assert got == [], f"3.1.1: the connection is closed without an acknowledgement, got {got!r}"
    dash.expect_none()


# ----------------------------------------------------------------------------------------------
# Subscribe


def test_controller_subscribes_to_its_building_only(fleet, version):
    c = fleet.raw_token("ctl-b1", version, kind="hvac-controller", building="b1")
    wanted = [temperature("b1", "+"), temperature("b1", "r1"), "#", temperature("b2", "+"), temperature("+", "+"),
              "buildings/b1/#"]
    codes = subscribe_codes(c, wanted)
    no = SUB_REFUSED[version]
    expected = [1, 1, no, no, no, no]
    assert codes == expected, f"SUBACK {codes}, expected {expected} for {wanted}"
    # The granted filter works: its building's rooms arrive, another building's do not.
    t1 = fleet.raw_user("t-b1-r2", V5)
    t2 = fleet.raw_user("t-b2-r1", V5)
    publish_accepted(t2, temperature("b2", "r1"), b"other building")
    publish_accepted(t1, temperature("b1", "r2"), b"own building")
    p = c.expect_publish()
    assert (p.topic, p.payload) == (temperature("b1", "r2"), b"own building")
    c.expect_no_packet(QUIET)
    # $share/<group>/F is checked as F.
    shared = ["$share/ops/" + temperature("b1", "+"), "$share/ops/" + temperature("b2", "+"), "$share/ops/#"]
    assert subscribe_codes(c, shared) == [1, no, no]


def test_controller_refused_hash_with_paho(fleet, version):
    c = fleet.controller("b1", version)
    assert c.subscribe("#", 1) == [SUB_REFUSED[version]]
    assert c.subscribe(temperature("b2", "+"), 1) == [SUB_REFUSED[version]]
    assert c.subscribe(temperature("b1", "+"), 1) == [1]


def test_dashboard_hash_is_granted_but_internal_topics_are_withheld(fleet, version):
    """`#` for a role with a deny of internal/#: granted; internal messages are not delivered to it,
    while a client allowed to read them gets them."""
    dash = fleet.raw_token("dashboard", version, roles=["dashboard"])
    assert subscribe_codes(dash, ["#"]) == [1]
    no = SUB_REFUSED[version]
    assert subscribe_codes(dash, ["internal/#", "internal/keys/rotation"]) == [no, no]
    keys = fleet.with_token("keys", V5, service="key-rotation")
    assert keys.subscribe("internal/keys/rotation", 1) == [1]
    keys.publish("internal/keys/rotation", b"rotate k7", 1)
    m = keys.expect()
    assert (m.topic, m.payload) == ("internal/keys/rotation", b"rotate k7")
    t = fleet.raw_user("t-b1-r1", V5)
    publish_accepted(t, temperature("b1", "r1"), b"after the internal one")
    p = dash.expect_publish()
    assert (p.topic, p.payload) == (temperature("b1", "r1"), b"after the internal one"), (
        f"the dashboard's '#' got {p!r}: internal/ must be withheld")
    dash.expect_no_packet(QUIET)
    # The dashboard may not publish there either (no grant, and the deny).
    publish_refused(dash, "internal/keys/rotation")
    keys.expect_none()


# ----------------------------------------------------------------------------------------------
# Identity values cannot widen a pattern


def test_wildcards_in_token_claims_do_not_widen_subscriptions(fleet, version):
    no = SUB_REFUSED[version]
    for building in ("+", "#"):
        c = fleet.raw_token("ctl-x", version, kind="hvac-controller", building=building)
        codes = subscribe_codes(c, [temperature("+", "+"), "buildings/#", temperature("b1", "+"), "#"])
        assert codes == [no] * 4, f"controller with claim building={building!r}: SUBACK {codes}"


def test_slash_in_a_token_claim_does_not_widen_subscriptions(fleet, version):
    """building = "b1/rooms" must match one literal level, never two."""
    c = fleet.raw_token("ctl-x", version, kind="hvac-controller", building="b1/rooms")
    codes = subscribe_codes(c, ["buildings/b1/rooms/rooms/+/temperature", temperature("b1", "+")])
    assert codes == [SUB_REFUSED[version]] * 2, f"SUBACK {codes}"


@pytest.mark.parametrize("claims", [
    {"building": "+", "room": "+"},
    {"building": "#", "room": "r1"},
    {"building": "b1", "room": "#"},
], ids=["plus", "hash", "hash-room"])
def test_wildcards_in_token_claims_do_not_widen_publish(fleet, version, claims):
    dash = fleet.dashboard()
    assert dash.subscribe("#", 1) == [1]
    r = fleet.raw_token("t-x", version, kind="thermostat", **claims)
    publish_refused(r, temperature("b1", "r1"))
    publish_refused(r, temperature("b2", "r7"))
    ok = fleet.raw_user("t-b1-r2", V5)
    publish_accepted(ok, temperature("b1", "r2"), b"control")
    only_message(dash, temperature("b1", "r2"), b"control")


@pytest.mark.parametrize("user,topic", [
    ("t-wild", temperature("b1", "r1")),                  # attr building = "+"
    ("t-wild", temperature("b9", "r1")),
    ("t-slash", "buildings/b1/rooms/r1/rooms/r1/temperature"),  # attr building = "b1/rooms/r1"
    ("t-slash", temperature("b1", "r1")),
])
def test_wildcards_and_slashes_in_attributes_do_not_widen_publish(fleet, version, user, topic):
    dash = fleet.dashboard()
    assert dash.subscribe("#", 1) == [1]
    r = fleet.raw_user(user, version)
    publish_refused(r, topic)
    ok = fleet.raw_user("t-b1-r2", V5)
    publish_accepted(ok, temperature("b1", "r2"), b"control")
    only_message(dash, temperature("b1", "r2"), b"control")


# ----------------------------------------------------------------------------------------------
# Reload


def reload(broker, trigger):
    if trigger == "sighup":
        broker.send_signal(signal.SIGHUP)
    # "file": the broker looks at the file every second by itself


def rewrite_topics(broker, text):
    # A file watch that compares modification times needs them to differ from the first write.
    time.sleep(1.1)
    replace_file(broker.topics_path, text)


@pytest.mark.parametrize("trigger", ["sighup", "file"])
def test_reload_that_removes_a_right_drops_the_live_subscription(fleet, version, trigger):
    ctl = fleet.controller("b1", version)
    ctl_filter = temperature("b1", "+")
    assert ctl.subscribe(ctl_filter, 1) == [1]
    dash = fleet.dashboard()
    assert dash.subscribe(temperature("b1", "+"), 1) == [1]
    t = fleet.raw_user("t-b1-r1", V5)
    publish_accepted(t, temperature("b1", "r1"), b"before")
    only_message(ctl, temperature("b1", "r1"), b"before")
    only_message(dash, temperature("b1", "r1"), b"before")

    since = len(fleet.broker.stderr_text())
    rewrite_topics(fleet.broker, topics_toml(controller_reads_temperature=False))
    reload(fleet.broker, trigger)
    e = fleet.broker.wait_for_event("subscription_revoked", since, client_id=ctl.client_id, topic=ctl_filter)
    assert (e["identity"], e["decision"]) == ("ctl-b1", "deny"), e

    assert not ctl.disconnected.is_set(), "the controller's connection must stay up; only the subscription goes"
    publish_accepted(t, temperature("b1", "r1"), b"after")
    only_message(dash, temperature("b1", "r1"), b"after")  # the message was routed ...
    ctl.expect_none()  # ... but not to the controller any more
    # The new rights apply to a new SUBSCRIBE at once.
    assert ctl.subscribe(ctl_filter, 1) == [SUB_REFUSED[version]]


def test_reload_that_adds_a_right_applies_to_new_subscribes(fleet):
    ctl = fleet.controller("b1")
    setpoints = "buildings/b1/rooms/+/setpoint"
    assert ctl.subscribe(setpoints, 1) == [NOT_AUTHORIZED]
    rewrite_topics(fleet.broker, topics_toml(controller_reads_setpoint=True))
    fleet.broker.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while (codes := ctl.subscribe(setpoints, 1)) != [1]:
        assert codes == [NOT_AUTHORIZED], codes
        assert time.monotonic() < deadline, f"still refused {RELOAD_TIMEOUT}s after SIGHUP"
        time.sleep(0.2)
    # A controller that connected before the reload also keeps its old rights.
    assert ctl.subscribe(temperature("b1", "+"), 1) == [1]


def test_reload_that_removes_a_publish_right_applies_at_once(fleet, version):
    """A thermostat connected before the reload loses its status topic at its next PUBLISH."""
    dash = fleet.dashboard()
    assert dash.subscribe("devices/+/status", 1) == [1]
    t = fleet.raw_cert(fleet.certs["t-cert-1"], version)
    publish_accepted(t, "devices/t-cert-1/status", b"online")
    only_message(dash, "devices/t-cert-1/status", b"online")
    since = len(fleet.broker.stderr_text())
    rewrite_topics(fleet.broker, topics_toml(thermostat_status=False))
    fleet.broker.send_signal(signal.SIGHUP)
    fleet.broker.wait_for_event("reload", since, decision="allow", predicate=lambda e: "topics.toml" in e["subject"])
    publish_refused(t, "devices/t-cert-1/status")
    dash.expect_none()
    assert t.is_open()


def test_broken_topics_file_on_reload_keeps_the_running_rules(fleet):
    ctl = fleet.controller("b1")
    assert ctl.subscribe(temperature("b1", "+"), 1) == [1]
    since = len(fleet.broker.stderr_text())
    rewrite_topics(fleet.broker, topics_toml(controller_reads_temperature=False) + "\n[[topic]\n")
    fleet.broker.send_signal(signal.SIGHUP)
    e = fleet.broker.wait_for_event("reload", since, decision="deny", predicate=lambda e: "topics.toml" in e["subject"])
    assert "topic" in e["reason"] and "previous version stays" in e["reason"], e
    time.sleep(0.5)
    t = fleet.raw_user("t-b1-r1", V5)
    publish_accepted(t, temperature("b1", "r1"), b"still here")
    only_message(ctl, temperature("b1", "r1"), b"still here")
    assert fleet.broker.alive()


# ----------------------------------------------------------------------------------------------
# mosquitto_pub / mosquitto_sub


def mosquitto_common(fleet, listener, version):
    host, port = fleet.broker.listeners[listener]
    return ["-h", host, "-p", str(port), "--cafile", str(fleet.pki.ca), "-V", VERSION_FLAG[version]]


class MosquittoSub:
    """mosquitto_sub -d; `suback()` waits for its SUBACK line and returns the granted codes."""

    def __init__(self, args):
        self.cmd = ["stdbuf", "-oL", "mosquitto_sub", "-d", *args]
        self.p = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.cv = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)
            self.cv.notify_all()

    def wait_line(self, predicate, what, timeout=10):
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for line in self.lines:
                    if line is not None and predicate(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or None in self.lines:
                    raise AssertionError(f"{self.cmd}: no line {what}:\n" + "\n".join(map(str, self.lines)))
                self.cv.wait(remaining)

    def suback(self):
        line = self.wait_line(lambda s: s.startswith("Subscribed (mid:"), "Subscribed (mid: ...)")
        return [int(x) for x in line.split(":", 2)[2].split(",")]

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(timeout=10)
        self.reader.join(timeout=5)


@pytest.fixture
def mosquitto_subs():
    made = []

    def make(args):
        s = MosquittoSub(args)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def mosquitto_pub(fleet, listener, version, *args):
    cmd = ["mosquitto_pub", *mosquitto_common(fleet, listener, version), *map(str, args)]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    return cmd, r


def test_mosquitto_thermostat_allowed_and_refused(fleet, version, mosquitto_subs):
    """mosquitto_sub as the dashboard (token) reads the thermostat's room; mosquitto_pub as the
    thermostat (password, attributes) publishes there, and is refused another room."""
    sub = mosquitto_subs([*mosquitto_common(fleet, "tokens", version), "-i", unique("msub"), "-u", "dashboard",
                          "-P", fleet.token("dashboard", roles=["dashboard"]), "-t", "buildings/b1/#", "-q", "1",
                          "-F", "%t|%p"])
    assert sub.suback() == [1]
    cmd, r = mosquitto_pub(fleet, "users", version, "-u", "t-b1-r1", "-P", "correct horse battery", "-q", "1",
                           "-t", temperature("b1", "r2"), "-m", "must not arrive")
    out = r.stdout + r.stderr
    if version == V5:
        assert "Not authorized" in out, f"{cmd}: mosquitto_pub should report the PUBACK 0x87:\n{out}"
    else:
        assert r.returncode == 0, f"{cmd}: exit {r.returncode} (3.1.1 acknowledges and drops)\n{out}"
    cmd, r = mosquitto_pub(fleet, "users", version, "-u", "t-b1-r1", "-P", "correct horse battery", "-q", "1",
                           "-t", temperature("b1", "r1"), "-m", "21.5")
    assert r.returncode == 0 and "Not authorized" not in r.stdout + r.stderr, f"{cmd}:\n{r.stdout}{r.stderr}"
    sub.wait_line(lambda s: s == f"{temperature('b1', 'r1')}|21.5", "with the allowed message")
    time.sleep(QUIET)
    with sub.cv:
        got = [s for s in sub.lines if s and "|" in s and not s.startswith("Client ")]
    assert got == [f"{temperature('b1', 'r1')}|21.5"], f"mosquitto_sub received {got}"


def test_mosquitto_controller_refused_hash(fleet, version, mosquitto_subs):
    token = fleet.token("ctl-b1", kind="hvac-controller", building="b1")
    sub = mosquitto_subs([*mosquitto_common(fleet, "tokens", version), "-i", unique("msub"), "-u", "ctl-b1", "-P",
                          token, "-t", "#", "-t", temperature("b1", "+"), "-q", "1"])
    assert sub.suback() == [SUB_REFUSED[version], 1]


# ----------------------------------------------------------------------------------------------
# firehook check and firehook topics doc


# A listener on port 0: should serve start after all, it takes no well-known port.
MAIN_CONFIG = """\
topics = "topics.toml"

[broker]
shards = 1

[[listener]]
name = "default"
address = "127.0.0.1"
port = 0
protocol = "mqtt"
"""


def run(*args, cwd=None):
    return subprocess.run([firehook_binary(), *map(str, args)], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=START_TIMEOUT, cwd=cwd)


def test_check_reports_an_unknown_role_in_the_topics_file_with_its_line(tmp_path):
    text = topics_toml()
    assert text.count('publish = ["dashboard"]\nsubscribe = ["dashboard"]') == 1  # lobby/announcements
    text = text.replace('publish = ["dashboard"]\nsubscribe = ["dashboard"]',
                        'publish = ["dashbaord"]\nsubscribe = ["dashboard"]')
    line = text.splitlines().index('publish = ["dashbaord"]') + 1
    topics = tmp_path / "topics.toml"
    topics.write_text(text)
    config = tmp_path / "firehook.toml"
    config.write_text(MAIN_CONFIG)
    r = run("check", "-c", config)
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"check accepted an unknown role:\n{out}"
    m = re.search(r"topics\.toml:(\d+):(\d+):[^\n]*unknown role \"dashbaord\"[^\n]*", out)
    assert m, f"no 'topics.toml:LINE:COL: ... unknown role \"dashbaord\"' in:\n{out}"
    assert int(m.group(1)) == line, f"reported line {m.group(1)}, the grant is on line {line}:\n{m.group(0)}"
    assert "dashboard" in m.group(0), f"the report should suggest the declared role:\n{m.group(0)}"
    # serve refuses it the same way, without listening.
    try:
        s = run("serve", "-c", config)
    except subprocess.TimeoutExpired:
        pytest.fail("serve started with an unknown role in the topics file (killed after the timeout)")
    assert s.returncode != 0 and "listener" not in s.stdout, s.stdout + s.stderr
    assert f"topics.toml:{line}:" in s.stdout + s.stderr


def test_check_accepts_the_test_topics_file(tmp_path):
    (tmp_path / "topics.toml").write_text(topics_toml())
    config = tmp_path / "firehook.toml"
    config.write_text(MAIN_CONFIG)
    r = run("check", "-c", config)
    assert r.returncode == 0, r.stdout + r.stderr


def test_topics_doc_renders_the_committed_example_document(tmp_path):
    """examples/topics.md is what `firehook topics doc` makes of examples/topics.toml, byte for byte:
    a change of either without the other fails here."""
    expected = (REPO / "examples" / "topics.md").read_text()
    r = run("topics", "doc", "--topics", "topics.toml", cwd=REPO / "examples")
    assert r.returncode == 0, r.stderr
    assert r.stdout == expected, "firehook topics doc output differs from examples/topics.md"
    out = tmp_path / "topics.md"
    r = run("topics", "doc", "--topics", REPO / "examples" / "topics.toml", "-o", out)
    assert r.returncode == 0, r.stderr
    assert out.read_text() == expected, "firehook topics doc -o differs from examples/topics.md"
