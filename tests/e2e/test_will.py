"""Will messages: published on an abnormal end of the connection, not on a normal DISCONNECT,
on DISCONNECT 0x04 (5.0), after the Will Delay Interval or at session end, with their QoS, retain
flag and properties."""

import socket
import struct
import time

from pahoclient import QUIET, V5, unique
from rawclient import Will

WILL_WAIT = 5.0


def watcher(broker, clients, version, topic):
    w = clients(broker, version)
    w.subscribe(topic, 2)
    return w


def test_will_published_on_abnormal_disconnect(broker, clients, version):
    w = watcher(broker, clients, version, "will/+")
    c = clients(broker, version, will={"topic": "will/a", "payload": b"lost", "qos": 1})
    c.kill()
    m = w.expect(WILL_WAIT)
    assert (m.topic, m.payload, m.qos, m.retain) == ("will/a", b"lost", 1, False)


def test_will_not_published_on_normal_disconnect(broker, clients, version):
    w = watcher(broker, clients, version, "will/+")
    c = clients(broker, version, will={"topic": "will/b", "payload": b"lost", "qos": 1})
    c.disconnect()  # reason 0x00 in 5.0 [MQTT-3.14.4-3]: the will is discarded
    # a later will of another client must be the first thing the watcher sees
    other = clients(broker, version, will={"topic": "will/c", "payload": b"sentinel", "qos": 1})
    time.sleep(QUIET)  # give a wrongly published will time to overtake the sentinel
    other.kill()
    m = w.expect(WILL_WAIT)
    assert (m.topic, m.payload) == ("will/c", b"sentinel"), f"will published after a normal DISCONNECT: {m!r}"


def test_v5_will_published_on_disconnect_with_will_message(broker, clients):
    w = watcher(broker, clients, V5, "will/+")
    c = clients(broker, V5, will={"topic": "will/d", "payload": b"bye-with-will", "qos": 1})
    c.disconnect(reason=0x04)
    m = w.expect(WILL_WAIT)
    assert (m.topic, m.payload) == ("will/d", b"bye-with-will")


def test_will_qos_retain_and_properties(broker, clients, version):
    w = watcher(broker, clients, version, "willp/t")
    will = {"topic": "willp/t", "payload": b"\x00binary will", "qos": 2, "retain": True}
    if version == V5:
        will["props"] = {"ContentType": "application/octet-stream", "UserProperty": [("device", "d1"), ("k", "v")],
                         "ResponseTopic": "willp/response", "CorrelationData": b"c0", "PayloadFormatIndicator": 0,
                         "MessageExpiryInterval": 60}
    c = clients(broker, version, will=will)
    c.kill()
    m = w.expect(WILL_WAIT)
    assert (m.topic, m.payload, m.qos) == ("willp/t", b"\x00binary will", 2)
    if version == V5:
        p = m.props
        assert p.get("ContentType") == "application/octet-stream", p
        assert p.get("UserProperty") == [("device", "d1"), ("k", "v")], p
        assert p.get("ResponseTopic") == "willp/response", p
        assert p.get("CorrelationData") == b"c0", p
        assert 0 < p.get("MessageExpiryInterval", 0) <= 60, p
        assert "WillDelayInterval" not in p
    # the will was retained
    late = clients(broker, version)
    late.subscribe("willp/t", 1)
    r = late.expect()
    assert (r.payload, r.retain) == (b"\x00binary will", True), "a will with retain set is stored as retained"


def test_will_published_when_session_taken_over(broker, clients, version):
    """5.0 [MQTT-3.1.4-3] and 3.1.1 practice: the old connection ends without DISCONNECT, so its will goes."""
    w = watcher(broker, clients, version, "willt/t")
    cid = unique("wt")
    clients(broker, version, client_id=cid, will={"topic": "willt/t", "payload": b"taken", "qos": 1})
    clients(broker, version, client_id=cid)
    m = w.expect(WILL_WAIT)
    assert m.payload == b"taken"


def test_v5_will_delay_not_sent_when_client_reconnects_in_time(broker, clients):
    """[MQTT-3.1.3-9]: reconnecting to the session before the Will Delay Interval ends cancels the will."""
    w = watcher(broker, clients, V5, "willd/+")
    cid = unique("wd")
    c = clients(broker, V5, client_id=cid, clean=False, props={"SessionExpiryInterval": 30},
                will={"topic": "willd/a", "payload": b"delayed", "qos": 1, "props": {"WillDelayInterval": 2}})
    c.kill()
    back = clients(broker, V5, client_id=cid, clean=False, props={"SessionExpiryInterval": 30})
    assert back.session_present
    w.expect_none(3.0)  # past the 2 s delay: nothing
    back.disconnect(reason=0)


def test_v5_will_sent_after_delay(broker, clients):
    w = watcher(broker, clients, V5, "willd/+")
    c = clients(broker, V5, clean=False, props={"SessionExpiryInterval": 30},
                will={"topic": "willd/b", "payload": b"late", "qos": 1, "props": {"WillDelayInterval": 1}})
    c.kill()
    killed = time.monotonic()
    m = w.expect(WILL_WAIT)
    elapsed = time.monotonic() - killed
    assert m.payload == b"late"
    assert elapsed >= 0.8, f"will published after {elapsed:.2f}s, before its 1 s delay"


def test_v5_will_sent_when_session_ends_before_delay(broker, clients):
    """The will goes at the earlier of Will Delay Interval (10 s) and session end (1 s)."""
    w = watcher(broker, clients, V5, "willd/+")
    c = clients(broker, V5, clean=False, props={"SessionExpiryInterval": 1},
                will={"topic": "willd/c", "payload": b"session over", "qos": 1, "props": {"WillDelayInterval": 10}})
    c.kill()
    killed = time.monotonic()
    m = w.expect(WILL_WAIT)
    assert m.payload == b"session over"
    assert 0.8 <= time.monotonic() - killed < 5.0


def test_v5_will_with_delay_but_no_session_expiry_goes_at_once(broker, clients):
    w = watcher(broker, clients, V5, "willd/+")
    c = clients(broker, V5, will={"topic": "willd/e", "payload": b"now", "qos": 1,
                                  "props": {"WillDelayInterval": 30}})
    c.kill()  # session expiry 0: the session ends now, and the will with it
    m = w.expect(WILL_WAIT)
    assert m.payload == b"now"


def test_will_of_client_killed_with_reset(broker, clients, raw, version):
    """A connection reset (not a FIN) is also an abnormal end."""
    w = watcher(broker, clients, version, "willr/t")
    r = raw(broker, version)
    r.connect(client_id=unique(), will=Will("willr/t", b"reset", 1))
    r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    r.close()
    assert w.expect(WILL_WAIT).payload == b"reset"
