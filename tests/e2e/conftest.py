"""Harness for the end-to-end tests: the real `firehook` binary as a process, on port 0.

`start_broker(config)` writes a configuration into the test's tmp_path (the defaults below with
`config` merged in), starts `$FIREHOOK serve -c FILE`, waits for every listener line on stdout and
returns a `Broker`. At the end of the test every broker still running gets SIGTERM; the test fails
unless it exits 0 within the time limit and its stderr holds no sanitizer report.

Most tests run with two shards so that a publisher and a subscriber may sit on different shards;
the `shards` fixture parameter lets a test say otherwise.
"""

import copy
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

FIREHOOK = os.environ.get("FIREHOOK")

START_TIMEOUT = 20.0  # a sanitizer build on a busy 2-core CI machine starts slowly
STOP_TIMEOUT = 15.0

# Values a test normally expects; they match the documented defaults except shards, sys_interval and
# the log format: JSON, so that every test checks that every line the broker writes is valid JSON,
# and finds events by their fields (Broker.events).
DEFAULT_CONFIG = {
    "broker": {"shards": 2, "sys_interval": 10},
    "log": {"format": "json"},
    "limits": {
        "max_connections": 100000,
        "connect_timeout": 5,
        "max_packet_size": 1048576,
        "max_inflight": 64,
        "max_queued_messages": 1000,
        "max_queued_bytes": 16777216,
        "max_subscriptions_per_client": 1000,
        "max_topic_levels": 32,
        "max_topic_length": 4096,
        "max_client_id_length": 128,
        "max_keep_alive": 3600,
        "max_session_expiry": 86400,
        "topic_alias_maximum": 64,
        "max_qos": 2,
        "retain_available": True,
        "max_retained_messages": 100000,
    },
    "listener": [
        {
            "name": "default",
            "address": "127.0.0.1",
            "port": 0,
            "protocol": "mqtt",
            "allow_anonymous": True,
            "allow_plaintext": False,
        }
    ],
}

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
)

LISTENER_RE = re.compile(
    r'^firehook: listener "(?P<name>[^"]+)" (?P<protocol>mqtts?|https?) on (?P<addr>.+):(?P<port>\d+)\s*$')


def pytest_collection_modifyitems(config, items):
    # Without a broker to test nothing can pass: stop with an error rather than skip everything.
    if not FIREHOOK:
        raise pytest.UsageError("FIREHOOK is not set: run `make e2e` (it sets FIREHOOK to the sanitizer "
                                "build) or set FIREHOOK=/abs/path/to/firehook")


def firehook_binary():
    # Absolute, so that a test running the binary in another working directory finds it too.
    path = Path(FIREHOOK).resolve()
    assert path.is_file() and os.access(path, os.X_OK), f"FIREHOOK={FIREHOOK} is not an executable file"
    return str(path)


# ----------------------------------------------------------------------------------------------
# Configuration files


def merge(base, overrides):
    """Deep merge of dicts; lists and scalars in `overrides` replace those in `base`."""
    out = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table, e.g. in an array of tables under a table
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML form for {v!r}")


def to_toml(cfg):
    """Returns (text, lines) where lines maps "table.key" (or "listener[i].key") to its 1-based line."""
    out, lines = [], {}

    def emit(text, key=None):
        out.append(text)
        if key is not None:
            lines[key] = len(out)

    def emit_body(header, body, key_prefix):
        # Keys first, then sub-tables ([listener.tls] after a [[listener]]'s keys, [auth.certificate]).
        emit(header)
        for k, v in body.items():
            if not isinstance(v, dict):
                emit(f"{k} = {toml_value(v)}", f"{key_prefix}.{k}")
        emit("")
        name = header.strip("[]")
        for k, v in body.items():
            if isinstance(v, dict):
                emit_body(f"[{name}.{k}]", v, f"{key_prefix}.{k}")

    # Top-level keys (e.g. `topics`) must come before the first [table] header.
    for key, value in cfg.items():
        if not isinstance(value, (dict, list)):
            emit(f"{key} = {toml_value(value)}", key)
    for table, body in cfg.items():
        if not isinstance(body, (dict, list)):
            continue
        if isinstance(body, dict):
            emit_body(f"[{table}]", body, table)
        elif isinstance(body, list) and all(isinstance(x, dict) for x in body):
            for i, entry in enumerate(body):
                emit_body(f"[[{table}]]", entry, f"{table}[{i}]")
        else:
            raise TypeError(f"top-level {table!r} must be a table or an array of tables")
    return "\n".join(out) + "\n", lines


def write_config(directory, overrides=None, name="firehook.toml"):
    cfg = merge(DEFAULT_CONFIG, overrides)
    text, lines = to_toml(cfg)
    path = Path(directory) / name
    path.write_text(text)
    return path, lines


# ----------------------------------------------------------------------------------------------
# The broker process


class Broker:
    """A running `firehook serve`. `host`/`port` are those of the first listener."""

    def __init__(self, directory, overrides=None, env=None):
        self.dir = Path(directory)
        self.config_path, self.config_lines = write_config(self.dir, overrides)
        self.config = merge(DEFAULT_CONFIG, overrides)
        self.stderr_path = self.dir / "firehook.stderr"
        self.stdout_lines = []
        self.listeners = {}  # name -> (address, port)
        self._listener_lines = queue.Queue()
        stderr_file = open(self.stderr_path, "wb")
        environment = dict(os.environ)
        environment.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        environment.update(env or {})
        self.process = subprocess.Popen(
            [firehook_binary(), "serve", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            env=environment,
        )
        stderr_file.close()  # the child has its own descriptor
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self._wait_for_listeners()
        self.stopped = False

    def _read_stdout(self):
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout_lines.append(line)
            m = LISTENER_RE.match(line)
            if m:
                self._listener_lines.put(m)
        self._listener_lines.put(None)  # EOF

    def _wait_for_listeners(self):
        wanted = [entry["name"] for entry in self.config["listener"]] + (["admin"] if "admin" in self.config else [])
        deadline = time.monotonic() + START_TIMEOUT
        while set(wanted) - set(self.listeners):
            remaining = deadline - time.monotonic()
            try:
                m = self._listener_lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                m = "timeout"
            if m is None or m == "timeout":
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
                why = "exited" if m is None else f"printed no listener line within {START_TIMEOUT}s"
                pytest.fail(
                    f"firehook {why} (exit code {self.process.returncode}); waiting for listeners {wanted}\n"
                    f"config:\n{self.config_path.read_text()}\nstdout:\n" + "\n".join(self.stdout_lines)
                    + "\nstderr:\n" + self.stderr_text()[-4000:]
                )
            addr = m.group("addr").strip("[]")
            self.listeners[m.group("name")] = (addr, int(m.group("port")))
        self.host, self.port = self.listeners[wanted[0]]
        assert self.port != 0, "listener line must carry the real port, not 0"

    def stderr_text(self):
        return self.stderr_path.read_bytes().decode("utf-8", "replace")

    def log_lines(self, since=0):
        """Every line written to stderr after offset `since`, each parsed as JSON (log.format =
        "json"): a list of dicts. A line that is not a JSON object fails the test."""
        out = []
        for line in self.stderr_text()[since:].splitlines():
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise AssertionError(f"firehook wrote a log line that is not JSON ({e}):\n{line}") from None
            assert isinstance(obj, dict), f"log line is not a JSON object: {line}"
            out.append(obj)
        return out

    def events(self, kind=None, since=0, **fields):
        """The events logged after offset `since`, of type `kind` when given, whose fields equal `fields`."""
        return [e for e in self.log_lines(since)
                if "event" in e and (kind is None or e["event"] == kind)
                and all(e.get(k) == v for k, v in fields.items())]

    def wait_for_event(self, kind, since=0, timeout=10.0, predicate=None, **fields):
        """Waits until an event of type `kind` with `fields` (and `predicate(event)`) is logged;
        returns it. Events reach the log from their own thread, a few milliseconds after."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events(kind, since, **fields) if predicate is None or predicate(e)]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind} event with {fields} within {timeout}s; events logged:\n"
                                     + "\n".join(json.dumps(e) for e in self.events(since=since)[-30:]))
            time.sleep(0.05)

    def audit_records(self, kind=None, **fields):
        """The records of the audit log (every event, none folded as the log folds repeats), of
        event type `kind` when given, whose fields equal `fields`."""
        d = self.dir / "state" / "audit"
        # A line is whole once its newline is written: the sink thread may be writing the last one.
        records = [json.loads(line) for f in sorted(d.glob("audit*.log"))
                   for line in f.read_text().split("\n")[:-1] if line.strip()]
        return [r for r in records if (kind is None or r.get("event") == kind)
                and all(r.get(k) == v for k, v in fields.items())]

    def rss(self):
        """The broker's resident memory now, in bytes (VmRSS of /proc/PID/status)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc/PID/status")

    def alive(self):
        return self.process.poll() is None

    def send_signal(self, sig):
        self.process.send_signal(sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)
            pytest.fail(f"firehook did not exit within {timeout}s of the signal; killed it")

    def stop(self, sig=signal.SIGTERM):
        """Signals the broker (unless it has exited already) and checks how it ended."""
        if self.stopped:
            return
        self.stopped = True
        try:
            if self.alive():
                self.send_signal(sig)
                code = self.wait_exit()
            else:
                code = self.process.returncode
                pytest.fail(f"firehook exited by itself during the test (exit code {code})\n"
                            + self.stderr_text()[-4000:])
        finally:
            self._reader.join(timeout=5)
        self.check_exit(code)

    def check_exit(self, code):
        err = self.stderr_text()
        for marker in SANITIZER_MARKERS:
            assert marker not in err, f"sanitizer report in firehook's stderr:\n{err[-6000:]}"
        assert code == 0, f"firehook exit code {code} after SIGTERM/SIGINT, expected 0\n{err[-4000:]}"
        if self.config.get("log", {}).get("format") == "json":
            self.log_lines()  # every line valid JSON


@pytest.fixture
def start_broker(tmp_path):
    """Factory: start_broker(overrides=None, shards=2, env=None) -> Broker. Stops and checks them all
    at the end. `env`: variables added to the broker's environment."""
    brokers = []

    def start(overrides=None, shards=2, env=None, **kw):
        overrides = merge({"broker": {"shards": shards}}, overrides)
        directory = tmp_path / f"broker{len(brokers)}"
        directory.mkdir()
        b = Broker(directory, overrides, env)
        brokers.append(b)
        return b

    yield start
    errors = []
    for b in brokers:
        try:
            b.stop()
        except BaseException as e:  # report every broker, not only the first
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def broker(start_broker):
    """A broker with the default configuration and two shards."""
    return start_broker()


@pytest.fixture
def clients(start_broker):
    """Factory: clients(broker, version=V5, connect=True, **Client kwargs) -> connected paho Client.
    Depends on start_broker so that the clients are closed before the brokers are stopped."""
    from pahoclient import Clients

    made = Clients()
    yield made
    made.close_all()


@pytest.fixture
def raw(start_broker):
    """Factory: raw(broker, version=5) -> RawClient (not connected at MQTT level)."""
    from rawclient import RawClient

    made = []

    def make(broker, version=5, listener=None):
        host, port = (broker.host, broker.port) if listener is None else broker.listeners[listener]
        c = RawClient(host, port, version)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture(params=[4, 5], ids=["3.1.1", "5.0"])
def version(request):
    """The protocol level a scenario runs under (4 = MQTT 3.1.1, 5 = MQTT 5.0)."""
    return request.param
