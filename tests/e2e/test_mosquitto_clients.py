"""mosquitto_pub and mosquitto_sub (Debian's mosquitto-clients; never the mosquitto broker) driving
firehook, under MQTT 3.1.1 and 5.0: delivery at every QoS, retained set and delete, offline queues
of a persistent session, MQTT 5.0 properties, and interoperation with paho clients."""

import subprocess
import threading

import pytest

from pahoclient import V5, unique


VERSION_FLAG = {4: "mqttv311", 5: "mqttv5"}
TIMEOUT = 10


def pub(broker, version, topic, *args, check=True):
    cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", VERSION_FLAG[version], "-t", topic,
           *map(str, args)]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    if check:
        assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    return r


class Sub:
    """A mosquitto_sub process; `ready()` returns once its SUBACK arrived (seen in -d output)."""

    def __init__(self, broker, version, topics, *args, fmt="%t|%q|%r|%p"):
        self.cmd = ["stdbuf", "-oL", "mosquitto_sub", "-d", "-h", broker.host, "-p", str(broker.port), "-V", VERSION_FLAG[version],
                    "-F", fmt, *map(str, args)]
        for t in topics:
            self.cmd += ["-t", t]
        self.p = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.lines, self.debug = [], []
        self.subacked = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.p.stdout:
            line = line.rstrip("\n")
            if line.startswith(("Client ", "Subscribed (mid")) or line == "Timed out":
                self.debug.append(line)
                if "SUBACK" in line:
                    self.subacked.set()
            else:
                self.lines.append(line)

    def ready(self):
        assert self.subacked.wait(TIMEOUT), f"{self.cmd}: no SUBACK\n" + "\n".join(self.debug + self.lines)
        return self

    def wait(self, timeout=TIMEOUT):
        """Waits for the process to exit (-C count reached); returns its message lines."""
        try:
            code = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError(f"{self.cmd}: still running after {timeout}s; got {self.lines}\n"
                                 + "\n".join(self.debug[-20:])) from None
        self._reader.join(timeout=5)
        assert code == 0, f"{self.cmd}: exit {code}\n" + "\n".join(self.debug + self.lines)
        return self.lines

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(timeout=TIMEOUT)
        self._reader.join(timeout=5)


@pytest.fixture
def subs():
    made = []

    def make(*args, **kw):
        s = Sub(*args, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_pub_to_mosquitto_sub(broker, subs, version, qos):
    topic = f"mosq/{unique()}"
    s = subs(broker, version, [topic], "-q", qos, "-C", 3).ready()
    for i in range(3):
        pub(broker, version, topic, "-q", qos, "-m", f"hello {i}")
    assert s.wait() == [f"{topic}|{qos}|0|hello {i}" for i in range(3)]


def test_wildcards_and_qos_downgrade(broker, subs, version):
    base = f"mosq/{unique()}"
    s = subs(broker, version, [f"{base}/+/temp", f"{base}/#"], "-q", 1, "-C", 2).ready()
    pub(broker, version, f"{base}/room1/temp", "-q", 2, "-m", "21.5")
    # one delivery per subscriber for overlapping filters in 3.1.1; 5.0 also sends one per client
    pub(broker, version, f"{base}/room1/humidity", "-q", 0, "-m", "40")
    assert s.wait() == [f"{base}/room1/temp|1|0|21.5", f"{base}/room1/humidity|0|0|40"]


def test_retained_set_and_delete(broker, subs, version):
    topic = f"mosq/retained/{unique()}"
    pub(broker, version, topic, "-r", "-q", 1, "-m", "kept")
    # A new subscriber gets it with RETAIN 1 ...
    assert subs(broker, version, [topic], "-C", 1).wait() == [f"{topic}|0|1|kept"]
    # ... until an empty retained message deletes it.
    pub(broker, version, topic, "-r", "-n")
    s = subs(broker, version, [topic], "-W", 1)
    s.p.wait(timeout=TIMEOUT)
    assert s.subacked.is_set(), "\n".join(s.debug)
    assert s.lines == [], f"deleted retained message still delivered: {s.lines}"


def test_persistent_session_queues_while_offline(broker, subs, version):
    topic = f"mosq/queue/{unique()}"
    cid = unique("msub")
    extra = ["-x", 60] if version == V5 else []
    # Subscribe with a persistent session, then leave (-E: exit once subscribed).
    first = subs(broker, version, [topic], "-c", "-i", cid, "-q", 1, "-E", *extra)
    first.wait()
    for i in range(5):
        pub(broker, version, topic, "-q", 1, "-m", f"queued {i}")
    back = subs(broker, version, [topic], "-c", "-i", cid, "-q", 1, "-C", 5, *extra)
    assert back.wait() == [f"{topic}|1|0|queued {i}" for i in range(5)]


def test_v5_properties_pass_through(broker, subs):
    topic = f"mosq/props/{unique()}"
    s = subs(broker, V5, [topic], "-C", 1, fmt="%t|%P|%C|%R|%E|%p").ready()
    pub(broker, V5, topic, "-m", "body", "-D", "publish", "user-property", "site", "north",
        "-D", "publish", "content-type", "text/plain", "-D", "publish", "response-topic", "mosq/reply",
        "-D", "publish", "message-expiry-interval", 120)
    [line] = s.wait()
    t, users, ctype, rtopic, expiry, payload = line.split("|")
    assert (t, users, ctype, rtopic, payload) == (topic, "site:north", "text/plain", "mosq/reply", "body"), line
    assert 115 <= int(expiry) <= 120, f"the remaining expiry interval is sent on: {line}"


def test_mosquitto_and_paho_interoperate(broker, clients, subs, version):
    topic = f"mosq/interop/{unique()}"
    s = subs(broker, version, [topic], "-q", 2, "-C", 1).ready()
    p = clients(broker, version)
    p.publish(topic, b"from paho", 2)
    assert s.wait() == [f"{topic}|2|0|from paho"]

    c = clients(broker, version)
    c.subscribe(f"{topic}/back", 1)
    pub(broker, version, f"{topic}/back", "-q", 1, "-m", "from mosquitto_pub")
    m = c.expect()
    assert (m.topic, m.payload, m.qos) == (f"{topic}/back", b"from mosquitto_pub", 1)


def test_large_payload_and_packet_size_limit(start_broker, subs, version, tmp_path):
    b = start_broker({"limits": {"max_packet_size": 65536}})
    topic = f"mosq/big/{unique()}"
    ok = tmp_path / "ok.bin"
    ok.write_bytes(b"a" * 60000)
    s = subs(b, version, [topic], "-C", 1, fmt="%t|%l").ready()
    pub(b, version, topic, "-q", 1, "-f", ok)
    assert s.wait() == [f"{topic}|60000"]
    # Over the broker's Maximum Packet Size: not delivered (3.1.1: the broker closes the publisher's
    # connection; 5.0: libmosquitto read the limit from CONNACK and does not send it at all).
    big = tmp_path / "big.bin"
    big.write_bytes(b"b" * 70000)
    watch = subs(b, version, [topic], "-C", 1, fmt="%t|%l").ready()
    pub(b, version, topic, "-q", 1, "-f", big, check=False)
    pub(b, version, topic, "-q", 1, "-m", "small")
    assert watch.wait() == [f"{topic}|5"], "only the message within the limit arrives"
