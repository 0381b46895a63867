"""paho-mqtt 1.6.1 clients for the tests, with every wait bounded.

Each `Client` runs paho's network loop in its own thread (not `loop_start`, which reconnects by
itself): a lost connection stays lost, so a test sees exactly what the broker did. Acknowledgements,
messages and disconnects arrive on queues and events that the test waits on with a timeout.
"""

import itertools
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCodes
from paho.mqtt.subscribeoptions import SubscribeOptions

from rawclient import props_dict

V31, V311, V5 = mqtt.MQTTv31, mqtt.MQTTv311, mqtt.MQTTv5
VERSION_NAMES = {V31: "3.1", V311: "3.1.1", V5: "5.0"}

TIMEOUT = 5.0   # for anything that should happen
QUIET = 0.5     # how long to watch for something that must not happen, when no later event can tell

_counter = itertools.count()


def unique(prefix="c"):
    """A short unique name (client ids of MQTT 3.1 are limited to 23 characters)."""
    return f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:8]}"


def make_props(packet_type, props):
    if not props:
        return None
    p = Properties(packet_type)
    for name, value in props.items():
        if isinstance(value, list):
            for item in value:
                setattr(p, name, item)
        else:
            setattr(p, name, value)
    return p


def code(rc):
    """An int from paho's ReasonCodes, or an int."""
    return rc.value if isinstance(rc, ReasonCodes) else int(rc)


@dataclass
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    props: dict = field(default_factory=dict)
    receiver: str = None  # client id of the client that got it


class Client:
    def __init__(self, broker, version=V5, client_id=None, clean=True, keepalive=30, props=None,
                 will=None, listener=None, messages=None):
        """props: CONNECT properties by paho name, e.g. {"SessionExpiryInterval": 60}.
        will: dict(topic=, payload=, qos=, retain=, props=).
        messages: a queue to deliver into (several clients may share one); default: their own."""
        self.broker = broker
        self.version = version
        self.client_id = unique() if client_id is None else client_id
        self.clean = clean
        self.keepalive = keepalive
        self.connect_props = props
        if listener is None:
            self.host, self.port = broker.host, broker.port
        else:
            self.host, self.port = broker.listeners[listener]
        kwargs = {"protocol": version, "reconnect_on_failure": False}
        if version != V5:
            kwargs["clean_session"] = clean
        self.c = mqtt.Client(client_id=self.client_id, **kwargs)
        self.c.suppress_exceptions = True
        if will:
            self.c.will_set(will["topic"], will.get("payload", b""), will.get("qos", 0), will.get("retain", False),
                            make_props(PacketTypes.WILLMESSAGE, will.get("props")))
        self.messages = queue.Queue() if messages is None else messages
        self.connacks = queue.Queue()
        self.disconnected = threading.Event()
        self.disconnect_rc = None
        self.disconnect_props = {}
        self._acks = {}
        self._acks_cv = threading.Condition()
        self._stop = threading.Event()
        self._thread = None
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = self._on_publish
        self.c.on_disconnect = self._on_disconnect

    # -- callbacks (paho's loop thread)

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connacks.put((flags.get("session present", 0), code(rc), props_dict(properties)))

    def _on_message(self, client, userdata, msg):
        self.messages.put(Message(msg.topic, msg.payload, msg.qos, bool(msg.retain), bool(msg.dup),
                                  props_dict(getattr(msg, "properties", None)), self.client_id))

    def _put_ack(self, mid, value):
        with self._acks_cv:
            self._acks[mid] = value
            self._acks_cv.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        self._put_ack(("sub", mid), [code(g) for g in granted])

    def _on_unsubscribe(self, client, userdata, mid, properties=None, reasons=None):
        if isinstance(reasons, ReasonCodes):
            reasons = [reasons]
        self._put_ack(("unsub", mid), [code(r) for r in reasons] if reasons is not None else None)

    def _on_publish(self, client, userdata, mid):
        self._put_ack(("pub", mid), True)

    def _on_disconnect(self, client, userdata, rc, properties=None):
        if not self.disconnected.is_set():
            self.disconnect_rc = code(rc)
            self.disconnect_props = props_dict(properties)
            self.disconnected.set()

    def _wait_ack(self, key, timeout, what):
        deadline = time.monotonic() + timeout
        with self._acks_cv:
            while key not in self._acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.disconnected.is_set():
                    why = "the connection closed" if self.disconnected.is_set() else f"no answer within {timeout}s"
                    raise AssertionError(f"{self.client_id}: {what}: {why} (disconnect rc {self.disconnect_rc})")
                self._acks_cv.wait(min(remaining, 0.1))
            return self._acks.pop(key)

    # -- network loop

    def _run(self):
        while not self._stop.is_set():
            if self.c.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
        if not self._stop.is_set():
            self._on_disconnect(self.c, None, mqtt.MQTT_ERR_CONN_LOST)

    def connect(self, expect_rc=0, clean=None, timeout=TIMEOUT):
        """Connects and waits for CONNACK. Returns (session_present, reason code, CONNACK properties)."""
        if clean is not None:
            self.clean = clean
            if self.version != V5:
                self.c._clean_session = clean
        self.disconnected.clear()
        self.disconnect_rc = None
        self._stop.clear()
        kwargs = {}
        if self.version == V5:
            kwargs["clean_start"] = self.clean
            kwargs["properties"] = make_props(PacketTypes.CONNECT, self.connect_props)
        self.c.connect(self.host, self.port, keepalive=self.keepalive, **kwargs)
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"paho-{self.client_id}")
        # paho writes from the calling thread unless it knows of a loop thread. Over TLS that means
        # SSL_write on the test's thread while the loop thread is in SSL_read on the same SSL object,
        # which corrupts the record stream (the broker then sees "bad record mac"). Telling paho
        # about our loop thread makes it queue every write for that thread.
        self.c._thread = self._thread
        self._thread.start()
        try:
            self.connack = self.connacks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.client_id}: no CONNACK within {timeout}s "
                                 f"(disconnect rc {self.disconnect_rc})") from None
        if expect_rc is not None:
            assert self.connack[1] == expect_rc, f"CONNACK reason {self.connack[1]:#04x}, expected {expect_rc:#04x}"
        return self.connack

    @property
    def session_present(self):
        return bool(self.connack[0])

    @property
    def connack_props(self):
        return self.connack[2]

    def _stop_loop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT)
            assert not self._thread.is_alive(), "paho loop thread did not stop"

    def disconnect(self, reason=None, props=None, timeout=TIMEOUT):
        """A normal DISCONNECT (5.0: with `reason` and `props` when given); waits until it is sent."""
        rc = ReasonCodes(PacketTypes.DISCONNECT, identifier=reason) if reason is not None else None
        self.c.disconnect(rc, make_props(PacketTypes.DISCONNECT, props))
        assert self.disconnected.wait(timeout), f"{self.client_id}: DISCONNECT not sent within {timeout}s"
        self._stop_loop()

    def kill(self):
        """Ends the connection without DISCONNECT, as a crashed device or a broken network would."""
        self._stop_loop()
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # a FIN with no DISCONNECT before it
            except OSError:
                pass
            sock.close()
        self.disconnected.set()

    def close(self):
        """Test clean-up: stop the loop and drop the socket, whatever the state."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT)
        self.c._thread = None
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def wait_disconnected(self, timeout=TIMEOUT):
        """Waits until the broker ends the connection; returns the DISCONNECT reason code
        (5.0, when the broker sent one) or paho's MQTT_ERR_CONN_LOST (7) when it only closed."""
        assert self.disconnected.wait(timeout), f"{self.client_id}: still connected after {timeout}s"
        return self.disconnect_rc

    # -- operations

    def subscribe(self, topic, qos=0, no_local=False, retain_as_published=False, retain_handling=0,
                  sub_id=None, props=None, timeout=TIMEOUT):
        """Subscribes one filter, or a list of (filter, qos); returns the SUBACK reason codes."""
        p = dict(props or {})
        if sub_id is not None:
            p["SubscriptionIdentifier"] = sub_id
        if isinstance(topic, list):
            if self.version == V5:
                topic = [(t, SubscribeOptions(q)) for t, q in topic]
            rc, mid = self.c.subscribe(topic, properties=make_props(PacketTypes.SUBSCRIBE, p))
        elif self.version == V5:
            opts = SubscribeOptions(qos, no_local, retain_as_published, retain_handling)
            rc, mid = self.c.subscribe(topic, options=opts, properties=make_props(PacketTypes.SUBSCRIBE, p))
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"paho could not send SUBSCRIBE: {rc}"
        return self._wait_ack(("sub", mid), timeout, f"SUBACK for {topic}")

    def unsubscribe(self, topics, timeout=TIMEOUT):
        """Returns the UNSUBACK reason codes (5.0) or None (3.1.1)."""
        rc, mid = self.c.unsubscribe(topics)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        return self._wait_ack(("unsub", mid), timeout, f"UNSUBACK for {topics}")

    def publish(self, topic, payload=b"", qos=0, retain=False, props=None, wait=True, timeout=TIMEOUT):
        """Publishes; with wait, returns once it is sent (QoS 0), PUBACK'd (1) or PUBCOMP'd (2)."""
        info = self.c.publish(topic, payload, qos, retain, make_props(PacketTypes.PUBLISH, props))
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"paho could not publish: {info.rc}"
        if wait:
            self._wait_ack(("pub", info.mid), timeout, f"publish to {topic} at QoS {qos}")
        return info.mid

    def acknowledged(self, mids):
        """How many of the publishes `mids` (from publish(wait=False)) the broker has acknowledged."""
        return len(self.which_acknowledged(mids))

    def which_acknowledged(self, mids):
        """The publishes of `mids` the broker has acknowledged (PUBACK, or PUBCOMP for QoS 2)."""
        with self._acks_cv:
            return [mid for mid in mids if ("pub", mid) in self._acks]

    def expect(self, timeout=TIMEOUT):
        """The next message delivered to this client."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.client_id}: no message within {timeout}s") from None

    def expect_n(self, n, timeout=TIMEOUT):
        """The next n messages (the whole wait is bounded by `timeout`)."""
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < n:
            try:
                got.append(self.messages.get(timeout=max(deadline - time.monotonic(), 0.001)))
            except queue.Empty:
                raise AssertionError(f"{self.client_id}: {len(got)} of {n} messages within {timeout}s: "
                                     f"{[(m.topic, m.payload) for m in got]}") from None
        return got

    def expect_none(self, window=QUIET):
        try:
            m = self.messages.get(timeout=window)
        except queue.Empty:
            return
        raise AssertionError(f"{self.client_id}: unexpected message {m!r}")

    def expect_within(self, window=QUIET):
        """Every message that arrives within `window` seconds (for counting what must not repeat)."""
        deadline = time.monotonic() + window
        got = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return got
            try:
                got.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                return got

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def roundtrip(self, topic=None, timeout=TIMEOUT):
        """Proves the connection works: subscribes, publishes to itself, receives it."""
        topic = topic or f"roundtrip/{unique()}"
        self.subscribe(topic, 1)
        self.publish(topic, b"ping", 1)
        m = self.expect(timeout)
        assert (m.topic, m.payload) == (topic, b"ping")


class Clients:
    """Creates clients for a test and closes them all at the end of it."""

    def __init__(self):
        self.all = []

    def __call__(self, broker, version=V5, connect=True, **kw):
        c = Client(broker, version, **kw)
        self.all.append(c)
        if connect:
            c.connect()
        return c

    def close_all(self):
        for c in self.all:
            c.close()
