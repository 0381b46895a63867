"""Rates per client (issue 14, docs/hardening.md "Rates per client"): token buckets on PUBLISH
(messages and bytes) and on SUBSCRIBE/UNSUBSCRIBE, on by default. A client over its rate is held
back (the broker stops reading from it: nothing it sent is lost), and one that stays over for
limits.rate_limit_timeout is disconnected (5.0: DISCONNECT 0x96). Every episode is a limit_reached
event and a counter; a listener may change the rates of its clients."""

import statistics
import subprocess
import sys
import time
from pathlib import Path

from pahoclient import V5, unique
from rawclient import CONNACK, DISCONNECT, SUBACK, UNSUBACK, Closed, subscribe_packet, sub_options, \
    unsubscribe_packet

E2E = Path(__file__).resolve().parent

# A client that publishes QoS 0 as fast as its socket takes it, until killed; prints "closed" and
# the DISCONNECT reason when the broker ends it.
FLOODER = r"""
import sys
sys.path.insert(0, sys.argv[1])
from rawclient import RawClient, publish_packet, Closed
c = RawClient(sys.argv[2], int(sys.argv[3]), 5, timeout=60)
c.connect(client_id=sys.argv[4])
burst = publish_packet(5, sys.argv[5], b"x" * 64) * 200
try:
    while True:
        c.send(burst)
except OSError:
    pass
try:
    p = c.recv(5)
    print("closed", hex(p.reason or 0), flush=True)
except Closed:
    print("closed", flush=True)
"""


def flooder(broker, topic):
    return subprocess.Popen([sys.executable, "-c", FLOODER, str(E2E), broker.host, str(broker.port),
                             unique("flood"), topic], stdout=subprocess.PIPE, text=True)


def mosquitto_sub_count(broker, topic, out):
    """A mosquitto_sub printing one line per message of `topic` into file `out`."""
    f = open(out, "w")
    p = subprocess.Popen(["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv5",
                          "-t", topic, "-F", "%p"], stdout=f, stderr=subprocess.STDOUT)
    f.close()
    return p


def lines(path):
    return Path(path).read_text().count("\n")


def round_trips(client, topic, n):
    """Seconds from publish to delivery of n QoS 1 messages, one at a time."""
    out = []
    for i in range(n):
        start = time.perf_counter()
        client.publish(topic, str(i).encode(), 1)
        m = client.expect(5)
        out.append(time.perf_counter() - start)
        assert m.payload == str(i).encode()
    return out


def p99(samples):
    return statistics.quantiles(samples, n=100)[98]


def test_a_flood_is_held_to_its_rate_and_an_honest_client_is_not_slowed(start_broker, clients, tmp_path):
    b = start_broker()  # the defaults: 1,000 messages/s, a burst of 2,000
    honest = clients(b, V5)
    topic = f"rates/honest/{unique()}"
    honest.subscribe(topic, 1)
    round_trips(honest, topic, 20)  # warm up
    before = round_trips(honest, topic, 300)

    counted = tmp_path / "flood.txt"
    sub = mosquitto_sub_count(b, "rates/flood", counted)
    time.sleep(0.5)  # its SUBSCRIBE is in
    flood = flooder(b, "rates/flood")
    try:
        time.sleep(3.0)  # past the burst: from here on the rate holds
        start, at_start = time.monotonic(), lines(counted)
        during = round_trips(honest, topic, 300)
        time.sleep(max(0.0, 4.0 - (time.monotonic() - start)))
        seconds, received = time.monotonic() - start, lines(counted) - at_start
        assert flood.poll() is None, "the flooder was disconnected before rate_limit_timeout"
    finally:
        flood.kill()
        flood.wait()
        sub.kill()
        sub.wait()
    rate = received / seconds
    print(f"flood held to {rate:.0f} messages/s; honest round trip median/p99 "
          f"{statistics.median(before) * 1e3:.2f}/{p99(before) * 1e3:.2f} ms before, "
          f"{statistics.median(during) * 1e3:.2f}/{p99(during) * 1e3:.2f} ms during the flood")
    assert 800 <= rate <= 1150, f"the flood got {rate:.0f} messages/s through, its rate is 1,000/s"
    assert p99(during) <= 2 * p99(before), (p99(before), p99(during))
    event = b.wait_for_event("limit_reached", subject="limits.publish_rate")
    assert event["reason"] == "over its publish rate: held back"


def test_a_client_that_stays_over_its_rate_is_disconnected_with_0x96(start_broker):
    b = start_broker({"limits": {"publish_rate": 100, "publish_burst": 100, "rate_limit_timeout": 2}})
    flood = flooder(b, "rates/over")
    try:
        out, _ = flood.communicate(timeout=20)
    finally:
        flood.kill()
    assert out.strip() == "closed 0x96", out
    gone = b.wait_for_event("client_disconnected", reason_code="0x96")
    assert gone["initiator"] == "server"
    assert b.wait_for_event("limit_reached", subject="limits.publish_rate")


def test_subscribes_are_held_to_their_rate_and_answered_in_order(start_broker, raw):
    b = start_broker({"limits": {"subscribe_rate": 4, "subscribe_burst": 2}})
    c = raw(b)
    c.connect(client_id=unique("subs"))
    start = time.monotonic()
    for pid in range(1, 7):
        if pid % 2:
            c.send(subscribe_packet(5, pid, [(f"rates/s/{pid}", sub_options(1))]))
        else:
            c.send(unsubscribe_packet(5, pid, [f"rates/s/{pid - 1}"]))
    acks = []
    for _ in range(6):
        p = c.recv(5)
        assert p.type in (SUBACK, UNSUBACK)
        acks.append((p.pid, time.monotonic() - start))
    assert [pid for pid, _ in acks] == [1, 2, 3, 4, 5, 6]
    # Two at once, then four a second: the sixth no sooner than a second later.
    assert acks[5][1] >= 0.9, acks
    assert b.wait_for_event("limit_reached", subject="limits.subscribe_rate")


def test_a_listener_may_lift_the_rates_of_its_clients(start_broker, raw):
    b = start_broker({
        "limits": {"publish_rate": 10, "publish_burst": 10},
        "listener": [
            {"name": "default", "address": "127.0.0.1", "port": 0, "protocol": "mqtt", "allow_anonymous": True},
            {"name": "gateways", "address": "127.0.0.1", "port": 0, "protocol": "mqtt", "allow_anonymous": True,
             "rate_limits": {"publish_rate": 0}},
        ]})
    ids, took = {}, {}
    for listener in ("gateways", "default"):
        c = raw(b, listener=listener)
        ids[listener] = unique(listener)
        c.connect(client_id=ids[listener])
        start = time.monotonic()
        for _ in range(30):
            c.publish("rates/gw", b"m", qos=1)
        for _ in range(30):
            c.recv(10)  # its PUBACKs
        took[listener] = time.monotonic() - start
    # 30 messages at 10 a second after a burst of 10: two seconds at least, on the default listener.
    assert took["default"] >= 1.9, took
    assert b.wait_for_event("limit_reached", client_id=ids["default"])
    assert not b.events("limit_reached", client_id=ids["gateways"]), "the gateways listener lifts the rate"


def test_a_role_may_change_the_rates_of_its_clients_and_a_reload_changes_them_live(start_broker, raw, tmp_path):
    topics = tmp_path / "topics.toml"

    def write_topics(rates):
        topics.write_text('[anonymous]\nrole = "guest"\n\n[roles.guest]\ndescription = "anyone"\n'
                          f'rate_limits = {rates}\n\n[[topic]]\npattern = "rates/#"\ndescription = "x"\n'
                          'publish = ["guest"]\nsubscribe = ["guest"]\n')

    def publish_acked(c, n):
        start = time.monotonic()
        for _ in range(n):
            c.publish("rates/role", b"m", qos=1)
        for _ in range(n):
            c.recv(10)  # its PUBACKs
        return time.monotonic() - start

    write_topics("{ publish_rate = 0 }")  # the guest role lifts the listener's message rate
    b = start_broker({"topics": str(topics), "limits": {"publish_rate": 10, "publish_burst": 10}})
    c = raw(b)
    cid = unique("role")
    c.connect(client_id=cid)
    lifted = publish_acked(c, 30)  # at 10 a second after a burst of 10, this would take 2 s
    assert lifted < 1.0, lifted
    assert not b.events("limit_reached", client_id=cid)

    write_topics("{ publish_rate = 5, publish_burst = 5 }")
    b.wait_for_event("reload", decision="allow", predicate=lambda e: "topics" in e["subject"])
    held = publish_acked(c, 15)  # the same connection: a burst of 5, then 5 a second
    print(f"30 messages with the role's rate lifted: {lifted:.2f} s; 15 after the reload to 5/s: {held:.2f} s")
    assert held >= 1.9, held
    assert b.wait_for_event("limit_reached", client_id=cid, subject="limits.publish_rate")
