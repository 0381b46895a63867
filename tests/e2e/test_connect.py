"""CONNECT and the connection's life: versions, client ids, sessions, takeover, keep alive and the
CONNACK properties of MQTT 5.0."""

import socket
import subprocess
import time

import pytest

from conftest import DEFAULT_CONFIG, firehook_binary, write_config
from pahoclient import V5, V31, V311, unique
from rawclient import CONNACK, DISCONNECT, Will, connect_packet

SESSION_PROPS = {"SessionExpiryInterval": 60}


def persistent(version):
    """CONNECT arguments for a session that outlives the connection, in either version."""
    return {"clean": False, "props": SESSION_PROPS if version == V5 else None}


@pytest.mark.parametrize("level", [V31, V311, V5], ids=["3.1", "3.1.1", "5.0"])
def test_supported_versions_connect_and_exchange_messages(broker, clients, level):
    c = clients(broker, level, client_id=unique("v"))
    assert c.connack[1] == 0
    c.roundtrip()


@pytest.mark.parametrize("connect_version", [V311, V5], ids=["3.1.1-style", "5.0-style"])
def test_protocol_level_6_is_refused(broker, clients, raw, connect_version):
    """[MQTT-3.1.2-2] (3.1.1): CONNACK 0x01 then close. 5.0: CONNACK 0x84 then close."""
    r = raw(broker, connect_version)
    body = connect_packet(connect_version, unique(), keepalive=10)
    # the byte after the protocol name "MQTT" (2 + 4 bytes into the variable header) is the level
    idx = body.index(b"MQTT") + 4
    r.send(body[:idx] + bytes([6]) + body[idx + 1:])
    got = r.wait_closed()
    assert got, "broker closed the connection without a CONNACK"
    ack = got[0]
    assert ack.type == CONNACK, f"expected CONNACK, got {ack!r}"
    assert ack.body[1] in (0x01, 0x84), (
        f"CONNACK reason {ack.body[1]:#04x}; expected 0x01 (unacceptable protocol version, 3.1.1 form) "
        "or 0x84 (unsupported protocol version, 5.0 form)")
    assert len(got) == 1, f"nothing may follow the refusing CONNACK: {got!r}"
    # and the broker still serves everybody else
    clients(broker, V5).roundtrip()


def test_v5_empty_client_id_gets_assigned_identifier(broker, clients):
    a = clients(broker, V5, client_id="")
    b = clients(broker, V5, client_id="")
    ida = a.connack_props.get("AssignedClientIdentifier")
    idb = b.connack_props.get("AssignedClientIdentifier")
    assert ida and idb, f"CONNACK properties lack Assigned Client Identifier: {a.connack_props}"
    assert ida != idb
    a.roundtrip()
    b.roundtrip()


def test_v311_empty_client_id_accepted_with_clean_session(broker, raw):
    r = raw(broker, V311)
    ack = r.connect(client_id="", clean=True)
    assert ack.reason == 0 and not ack.session_present
    sub = r.subscribe([("empty/id", 1)])
    assert sub.codes == [1]


def test_v311_empty_client_id_refused_without_clean_session(broker, raw):
    """[MQTT-3.1.3-8]: CONNACK 0x02 (identifier rejected), then the connection is closed."""
    r = raw(broker, V311)
    r.send(connect_packet(V311, "", clean=False))
    got = r.wait_closed()
    assert got and got[0].type == CONNACK, f"expected a CONNACK before the close, got {got!r}"
    assert got[0].reason == 0x02, f"CONNACK return code {got[0].reason:#04x}, expected 0x02"


def test_v5_client_id_too_long_refused(start_broker, raw):
    b = start_broker({"limits": {"max_client_id_length": 16}})
    r = raw(b, V5)
    r.send(connect_packet(V5, "x" * 17))
    got = r.wait_closed()
    assert got and got[0].type == CONNACK and got[0].reason == 0x85, (
        f"expected CONNACK 0x85 (client identifier not valid) for a 17-byte id with max 16, got {got!r}")
    ok = raw(b, V5)
    ok.connect(client_id="y" * 16)


def test_session_takeover_closes_old_connection(broker, clients, version):
    cid = unique("take")
    old = clients(broker, version, client_id=cid)
    new = clients(broker, version, client_id=cid)
    rc = old.wait_disconnected()
    if version == V5:
        assert rc == 0x8E, f"old 5.0 connection should get DISCONNECT 0x8E (session taken over), got {rc!r}"
    new.roundtrip()
    assert not new.disconnected.is_set()


def test_takeover_keeps_subscriptions_of_persistent_session(broker, clients, version):
    cid = unique("take")
    old = clients(broker, version, client_id=cid, **persistent(version))
    old.subscribe("takeover/t", 1)
    new = clients(broker, version, client_id=cid, **persistent(version))
    assert new.session_present, "takeover of a persistent session must report session present"
    old.wait_disconnected()
    pub = clients(broker, version)
    pub.publish("takeover/t", b"after", 1)
    m = new.expect()
    assert (m.topic, m.payload) == ("takeover/t", b"after")


def test_clean_start_and_session_present(broker, clients, version):
    cid = unique("sess")
    pub = clients(broker, version)

    c = clients(broker, version, client_id=cid, clean=True)
    assert not c.session_present, "clean start must never report a session present"
    c.disconnect()

    c = clients(broker, version, client_id=cid, **persistent(version))
    assert not c.session_present, "no session existed for this id (the last one was clean)"
    c.subscribe("sess/t", 1)
    c.disconnect()

    c = clients(broker, version, client_id=cid, **persistent(version))
    assert c.session_present, "the persistent session should have been kept"
    pub.publish("sess/t", b"kept", 1)
    assert c.expect().payload == b"kept", "subscription of the resumed session"
    c.disconnect()

    c = clients(broker, version, client_id=cid, clean=True)
    assert not c.session_present
    pub.publish("sess/t", b"gone", 1)
    c.subscribe("sess/other", 1)
    pub.publish("sess/other", b"sentinel", 1)
    assert c.expect().payload == b"sentinel", "clean start must discard the old subscriptions"


def test_v5_session_without_expiry_ends_with_connection(broker, clients):
    cid = unique("noexp")
    c = clients(broker, V5, client_id=cid, clean=False)  # Session Expiry Interval absent = 0
    c.subscribe("noexp/t", 1)
    c.disconnect()
    c = clients(broker, V5, client_id=cid, clean=False)
    assert not c.session_present, "Session Expiry Interval 0: the session ends when the connection does"


def test_v5_session_expiry_interval(broker, clients):
    """Session Expiry Interval 2 s: resumable for 2 s after a disconnect, gone after that."""
    cid = unique("exp")
    props = {"SessionExpiryInterval": 2}
    pub = clients(broker, V5)
    c = clients(broker, V5, client_id=cid, clean=False, props=props)
    c.subscribe("exp/t", 1)
    c.disconnect()
    time.sleep(0.5)  # well inside the interval
    c = clients(broker, V5, client_id=cid, clean=False, props=props)
    assert c.session_present, "session must survive 0.5 s of a 2 s expiry interval"
    c.disconnect()
    gone_at = time.monotonic()
    time.sleep(3.2)  # past the interval (2 s), with margin for a loaded CI machine
    c = clients(broker, V5, client_id=cid, clean=False, props=props)
    assert not c.session_present, f"session still present {time.monotonic() - gone_at:.1f}s after a 2 s expiry"
    pub.publish("exp/t", b"late", 1)
    c.subscribe("exp/sentinel", 1)
    pub.publish("exp/sentinel", b"sentinel", 1)
    assert c.expect().payload == b"sentinel", "the expired session's subscription must be gone"


def test_v5_disconnect_can_shorten_session_expiry(broker, clients):
    cid = unique("exp0")
    c = clients(broker, V5, client_id=cid, clean=False, props={"SessionExpiryInterval": 60})
    c.subscribe("exp0/t", 1)
    c.disconnect(reason=0, props={"SessionExpiryInterval": 0})
    c = clients(broker, V5, client_id=cid, clean=False, props={"SessionExpiryInterval": 60})
    assert not c.session_present, "DISCONNECT with Session Expiry Interval 0 must end the session"


def test_v5_connack_advertises_configured_limits(start_broker, clients):
    b = start_broker({"limits": {"max_inflight": 7, "max_packet_size": 4096, "topic_alias_maximum": 9,
                                 "max_qos": 1}})
    c = clients(b, V5)
    p = c.connack_props
    assert p.get("ReceiveMaximum") == 7, p
    assert p.get("MaximumPacketSize") == 4096, p
    assert p.get("TopicAliasMaximum") == 9, p
    assert p.get("MaximumQoS") == 1, p
    assert p.get("RetainAvailable", 1) == 1, p
    assert c.subscribe("limits/t", 2) == [1], "a QoS 2 subscription is granted QoS 1 when max_qos = 1"


def test_v5_response_information_only_when_requested(broker, clients):
    plain = clients(broker, V5)
    assert "ResponseInformation" not in plain.connack_props, (
        "[MQTT-3.1.2-28] no Response Information unless the client asks for it")
    asking = clients(broker, V5, props={"RequestResponseInformation": 1})
    info = asking.connack_props.get("ResponseInformation")
    if info is not None:  # the server MAY send it; when it does, it must be usable as a topic prefix
        assert info and "+" not in info and "#" not in info, info
        topic = info.rstrip("/") + "/reply"
        asking.subscribe(topic, 1)
        plain.publish(topic, b"answer", 1)
        assert asking.expect().payload == b"answer"


def test_v5_request_response_properties_pass_through(broker, clients):
    requester = clients(broker, V5)
    responder = clients(broker, V5)
    responder.subscribe("svc/request", 1)
    reply_to = f"svc/reply/{requester.client_id}"
    requester.subscribe(reply_to, 1)
    requester.publish("svc/request", b"question", 1,
                      props={"ResponseTopic": reply_to, "CorrelationData": b"\x00\x01corr"})
    req = responder.expect()
    assert req.props.get("ResponseTopic") == reply_to, req.props
    assert req.props.get("CorrelationData") == b"\x00\x01corr", req.props
    responder.publish(req.props["ResponseTopic"], b"answer", 1,
                      props={"CorrelationData": req.props["CorrelationData"]})
    resp = requester.expect()
    assert (resp.topic, resp.payload) == (reply_to, b"answer")
    assert resp.props.get("CorrelationData") == b"\x00\x01corr"


def test_v5_user_properties_and_content_properties_passed_on(broker, clients):
    sub5 = clients(broker, V5)
    sub3 = clients(broker, V311)
    sub5.subscribe("props/t", 1)
    sub3.subscribe("props/t", 1)
    pub = clients(broker, V5)
    user = [("a", "1"), ("b", "x"), ("a", "2")]
    pub.publish("props/t", "héllo".encode(), 1, props={
        "UserProperty": user, "ContentType": "text/plain; charset=utf-8", "PayloadFormatIndicator": 1})
    m = sub5.expect()
    assert m.payload == "héllo".encode()
    assert m.props.get("UserProperty") == user, f"[MQTT-3.3.2-18] same user properties, same order: {m.props}"
    assert m.props.get("ContentType") == "text/plain; charset=utf-8"
    assert m.props.get("PayloadFormatIndicator") == 1
    m3 = sub3.expect()
    assert (m3.topic, m3.payload) == ("props/t", "héllo".encode()), "a 3.1.1 subscriber gets the bare message"


def test_second_connect_is_a_protocol_error(broker, clients, raw, version):
    """[MQTT-3.1.0-2]: a second CONNECT is a protocol violation; the connection is closed."""
    r = raw(broker, version)
    r.connect(client_id=unique())
    r.send(connect_packet(version, unique()))
    got = r.wait_closed()
    if version == V5:
        assert got and got[-1].type == DISCONNECT and got[-1].reason == 0x82, (
            f"expected DISCONNECT 0x82 (protocol error), got {got!r}")
    else:
        assert got == [], f"3.1.1: the connection is closed without a reply, got {got!r}"
    clients(broker, version).roundtrip()


def test_keepalive_respected_while_client_pings(broker, clients, version):
    """A client with keep alive 1 s that does ping is not disconnected."""
    c = clients(broker, version, keepalive=1)
    c.subscribe("ka/alive", 1)
    assert not c.disconnected.wait(3.2), f"client pinging every 1 s was disconnected (rc {c.disconnect_rc})"
    c.publish("ka/alive", b"still here", 1)
    assert c.expect().payload == b"still here"


def test_keepalive_enforced_at_one_and_a_half_times(broker, raw, clients, version):
    """[MQTT-3.1.2-24]: no packet within 1.5 x Keep Alive -> the server closes the connection."""
    watcher = clients(broker, version)
    watcher.subscribe("ka/will", 1)
    r = raw(broker, version)
    r.connect(client_id=unique("ka"), keepalive=1, will=Will("ka/will", b"timed out", 1))
    start = time.monotonic()
    assert r.is_open(1.2), "closed before 1.2 s with keep alive 1 s (allowed: 1.5 s)"
    got = r.wait_closed(timeout=3.0)
    elapsed = time.monotonic() - start
    assert elapsed <= 4.2, f"closed after {elapsed:.2f}s, keep alive 1 s"
    if version == V5 and got:
        assert got[-1].type == DISCONNECT and got[-1].reason == 0x8D, f"expected DISCONNECT 0x8D, got {got!r}"
    m = watcher.expect()
    assert (m.topic, m.payload) == ("ka/will", b"timed out"), "the will of a timed-out client is published"


def test_v5_server_keep_alive_caps_client_keep_alive(start_broker, raw):
    b = start_broker({"limits": {"max_keep_alive": 1}})
    r = raw(b, V5)
    ack = r.connect(client_id=unique(), keepalive=60)
    assert ack.props.get("ServerKeepAlive") == 1, f"CONNACK should carry Server Keep Alive 1: {ack!r}"
    start = time.monotonic()
    r.wait_closed(timeout=4.0)  # enforced at 1.5 x the server's value, not the client's 60 s
    assert time.monotonic() - start >= 1.2


def test_v5_client_keep_alive_below_cap_is_not_overridden(start_broker, raw):
    b = start_broker({"limits": {"max_keep_alive": 100}})
    r = raw(b, V5)
    ack = r.connect(client_id=unique(), keepalive=30)
    assert ack.props.get("ServerKeepAlive", 30) == 30, f"keep alive 30 within the cap 100: {ack!r}"


def test_two_listeners_share_one_broker(start_broker, clients):
    second = {"name": "second", "address": "127.0.0.1", "port": 0, "protocol": "mqtt",
              "allow_anonymous": True, "allow_plaintext": False}
    b = start_broker({"listener": DEFAULT_CONFIG["listener"] + [second]})
    assert set(b.listeners) == {"default", "second"}
    assert b.listeners["default"][1] != b.listeners["second"][1]
    sub = clients(b, V5, listener="second")
    sub.subscribe("two/listeners", 1)
    pub = clients(b, V311, listener="default")
    pub.publish("two/listeners", b"across", 1)
    assert sub.expect().payload == b"across"


def test_single_shard_broker_serves_both_versions(start_broker, clients):
    b = start_broker(shards=1)
    sub = clients(b, V311)
    sub.subscribe("one/shard", 2)
    pub = clients(b, V5)
    pub.publish("one/shard", b"x", 2)
    m = sub.expect()
    assert (m.payload, m.qos) == (b"x", 2)


@pytest.mark.parametrize("holder_reuses_port", [False, True], ids=["plain-socket", "so_reuseport-socket"])
def test_port_already_listened_on_is_refused(tmp_path, holder_reuses_port):
    # Several shards share their listening port with SO_REUSEPORT; that must not let a second
    # broker (or anything else of the same user, even with SO_REUSEPORT itself) share a port
    # somebody already listens on: the broker refuses to start and names the listener.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        if holder_reuses_port:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        listener = dict(DEFAULT_CONFIG["listener"][0], port=port)
        path, _ = write_config(tmp_path, {"broker": {"shards": 2}, "listener": [listener]})
        run = subprocess.run([firehook_binary(), "serve", "-c", str(path)], capture_output=True, text=True,
                             timeout=30)
    assert run.returncode != 0
    assert f"listener 'default' on 127.0.0.1:{port}: Address already in use" in run.stderr


def test_two_shards_share_the_listening_port(start_broker, clients):
    # Every shard accepts on the one port and the kernel picks one per connection: with nine
    # clients both shards' acceptors serve some (all on one shard: 2 in 512), and each must work,
    # messages crossing between the shards included.
    b = start_broker(shards=2)
    subs = [clients(b, V5) for _ in range(8)]
    for i, s in enumerate(subs):
        s.subscribe(f"spread/{i}", 1)
    pub = clients(b, V311)
    for i in range(len(subs)):
        pub.publish(f"spread/{i}", str(i).encode(), 1)
    for i, s in enumerate(subs):
        assert s.expect().payload == str(i).encode()
