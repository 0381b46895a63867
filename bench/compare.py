#!/usr/bin/python3
"""Side-by-side benchmark of Firehook and Mosquitto with firehook-bench; writes bench/RESULTS.md.

Run by `make bench` through scripts/bench (after the micro-benchmarks):

    bench/compare.py --build build/release [--runs 3] [--out bench/RESULTS.md] [--quick]

For every run of every scenario a fresh broker is started on a free loopback port with a generated
configuration (so no run inherits another's memory or queues), pinned with `taskset -c 0`; the
generator runs pinned to core 1 with one thread. Runs are interleaved (run 1 of every scenario on
both brokers, then run 2, ...) so that a noisy minute on a shared machine hits both brokers alike.
The table holds the median of the runs and the ratio Firehook/Mosquitto, against the targets of
issue 6.

In the throughput scenarios (issue 6) both brokers are configured to be lossless: Mosquitto with no
queue or inflight limit (max_queued_messages 0, max_inflight_messages 0, max_queued_bytes 0),
Firehook with the largest inflight window and queue limits its configuration accepts.
firehook-bench exits 1 when an acknowledged QoS 1/2 message is lost; this script then fails after
writing what it measured.

The backpressure scenarios (issue 12: fanin_q1_w1024, fanin_q1_w4096, firehose_q1, stall_pairs,
stall_pairs_baseline) run both brokers with their DEFAULT limits instead (Firehook: its default
queue and inflight limits, the per-client rates of issue 14 lifted as in every scenario; Mosquitto: max_inflight_messages 20, max_queued_messages 1000, max_queued_bytes 0 by
default), where a broker may drop messages for a slow subscriber. A loss there fails the script
for Firehook only; for Mosquitto (or a --baseline build from before backpressure) it is recorded
as a finding. Their figures go to a section of their own in RESULTS.md, so that a run of only
these scenarios (--only) replaces that section and keeps the rest, and a run without them keeps it.

With --baseline FIREHOOK_BINARY (for example the Release build of an earlier commit in a git
worktree) every scenario also runs on that binary, interleaved with the other two, and RESULTS.md
gets a "Before and after" table: the median and the range of the runs of each, and the ratio
after/before, so that a change's cost or gain is read against the run-to-run spread of the same run.

The scenarios of AUDIT_COST (fan-in QoS 1, 100 pairs QoS 0, plain connections) also run on this
build with its audit log off ([audit] enabled = false), interleaved likewise: the table "The audit
log on and off" says what the audit log costs (issue 13: within 10%).

Once per comparison, the build also gets an admin endpoint and 10,000 idle clients, and its
`/metrics` is scraped while they are connected: "Metrics scrape with many clients connected".

Everything a run writes is kept under BUILD/bench-results/ (one JSON line per run, broker logs).
Python 3 standard library only; the broker binaries, openssl, taskset and mosquitto are external.
"""

import argparse
import functools
import json
import os
import platform
import re
import resource
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTES_MARKER = "<!-- Everything below this line is kept by bench/compare.py when it rewrites the file. -->"
# The section of the backpressure scenarios (issue 12) lies between these, above NOTES_MARKER.
BACKPRESSURE_BEGIN = "<!-- Backpressure section: written by bench/compare.py when it runs those scenarios. -->"
BACKPRESSURE_END = "<!-- End of the backpressure section. -->"
BACKPRESSURE_TITLE = "Backpressure at default limits (issue 12)"

LISTENER_RE = re.compile(r'^firehook: listener "[^"]+" (mqtts?) on (\S+):(\d+)\s*$')
ADMIN_RE = re.compile(r'^firehook: listener "admin" http on (\S+):(\d+)\s*$')


# --- scenarios -------------------------------------------------------------------------------

class Scenario:
    """One generator command and the figure it is judged by.

    metric: key of the generator's JSON line; better: "higher" or "lower";
    target: (op, factor) for the ratio Firehook/Mosquitto, or None (informational).
    """

    def __init__(self, key, title, args, metric, better, target=None, tls=False, fresh_memory=False,
                 extra=(), defaults=False, firehook_args=()):
        self.key = key
        self.title = title
        self.args = args
        self.metric = metric
        self.better = better
        self.target = target
        self.tls = tls
        self.fresh_memory = fresh_memory
        self.extra = extra  # further (metric, better, target, title) read from the same runs
        # Both brokers with their default limits (issue 12's backpressure scenarios): reported in
        # their own section, and a loss there is a finding for Mosquitto, a failure for Firehook.
        self.defaults = defaults
        # Generator arguments for Firehook's runs only (and a --baseline's), e.g. --persistent.
        self.firehook_args = firehook_args


def scenarios(quick):
    # Durations and counts are scaled so that `make bench` (3 runs, 2 brokers) ends in about
    # 16 minutes on a 2-core machine, 4 of them the backpressure scenarios (the stall runs publish for
    # 13 s); --quick is a smoke test of the whole pipeline (about 2 minutes).
    d = "1" if quick else "3"
    conns = "1000" if quick else "10000"
    rate_d = "1" if quick else "3"
    # The stall of issue 12 is 10 s (1 s into publishing); the run goes on 2 s after it so that the
    # stalled pair's backlog is delivered while the others still publish.
    stall = ["--stall-after", "1", "--stall-for", "1"] if quick else ["--stall-after", "1", "--stall-for", "10"]
    stall_d = "3" if quick else "13"
    stall_pairs = ["pairs", "--pairs", "100", "--qos", "1", "--rate", "20000", "--duration", stall_d]
    stall_extra = (("delivered_per_s", "higher", None, "delivered msg/s (the 100 pairs)"),
                   ("latency_p50_us", "lower", None, "p50 latency (µs)"),
                   ("send_lag_p99_us", "lower", None, "publishers' p99 send lag (µs)"))
    s = [
        Scenario("fanin_q0", "fan-in 8→1, QoS 0, closed loop",
                 ["fanin", "--publishers", "8", "--qos", "0", "--duration", d], "delivered_per_s", "higher",
                 (">=", 3.0)),
        Scenario("fanin_q1", "fan-in 8→1, QoS 1, closed loop",
                 ["fanin", "--publishers", "8", "--qos", "1", "--duration", d], "delivered_per_s", "higher",
                 (">=", 3.0)),
        Scenario("fanin_q2", "fan-in 8→1, QoS 2, closed loop",
                 ["fanin", "--publishers", "8", "--qos", "2", "--duration", d], "delivered_per_s", "higher"),
        # Issue 12: Firehook's subscriber keeps its session, so every message is written to the
        # durable store before its PUBACK; Mosquitto's is clean and keeps nothing on disk.
        Scenario("fanin_q1_durable", "fan-in 8→1, QoS 1, closed loop; Firehook durable (persistent subscriber), "
                 "Mosquitto clean",
                 ["fanin", "--publishers", "8", "--qos", "1", "--duration", d], "delivered_per_s", "higher",
                 (">=", 1.0), firehook_args=("--persistent",)),
        # The same at QoS 2: each delivery to the persistent subscriber also waits for the commit
        # of its record under its packet identifier before it goes out (docs/store.md).
        Scenario("fanin_q2_durable", "fan-in 8→1, QoS 2, closed loop; Firehook durable (persistent subscriber), "
                 "Mosquitto clean",
                 ["fanin", "--publishers", "8", "--qos", "2", "--duration", d], "delivered_per_s", "higher",
                 firehook_args=("--persistent",)),
        Scenario("fanout_q0", "fan-out 1→100, QoS 0, closed loop",
                 ["fanout", "--subscribers", "100", "--qos", "0", "--duration", d, "--window", "100"],
                 "delivered_per_s", "higher", (">=", 2.0)),
        Scenario("fanout_q1", "fan-out 1→100, QoS 1, closed loop",
                 ["fanout", "--subscribers", "100", "--qos", "1", "--duration", d, "--window", "100"],
                 "delivered_per_s", "higher", (">=", 2.0)),
        Scenario("pairs_q0", "100 pairs, QoS 0, closed loop",
                 ["pairs", "--pairs", "100", "--qos", "0", "--duration", d, "--window", "100"],
                 "delivered_per_s", "higher", (">=", 2.0)),
        Scenario("pairs_q1", "100 pairs, QoS 1, closed loop",
                 ["pairs", "--pairs", "100", "--qos", "1", "--duration", d, "--window", "100"],
                 "delivered_per_s", "higher", (">=", 2.0)),
        Scenario("latency_q0", "latency, 8→1 at 20,000 msg/s, QoS 0, open loop",
                 ["fanin", "--publishers", "8", "--qos", "0", "--rate", "20000", "--duration", rate_d],
                 "latency_p99_us", "lower", ("<=", 0.5),
                 extra=(("latency_p50_us", "lower", None, "p50 latency (µs)"),
                        ("latency_p999_us", "lower", None, "p99.9 latency (µs)"))),
        Scenario("latency_q1", "latency, 8→1 at 20,000 msg/s, QoS 1, open loop",
                 ["fanin", "--publishers", "8", "--qos", "1", "--rate", "20000", "--duration", rate_d],
                 "latency_p99_us", "lower", ("<=", 0.5),
                 extra=(("latency_p50_us", "lower", None, "p50 latency (µs)"),
                        ("latency_p999_us", "lower", None, "p99.9 latency (µs)"))),
        Scenario("conn_plain", f"{conns} connections, plain",
                 ["conn", "--connections", conns, "--hold", "2"], "conn_per_s", "higher", (">=", 2.0),
                 fresh_memory=True,
                 extra=(("broker_bytes_per_conn", "lower", ("<=", 1.0), "resident bytes per idle connection"),
                        ("broker_cpu_us_per_conn", "lower", None, "broker CPU per connection (µs)"))),
        Scenario("conn_tls", f"{conns} connections, TLS (ECDSA P-256)",
                 ["conn", "--connections", conns, "--hold", "2"], "conn_per_s", "higher", (">=", 1.0),
                 tls=True, fresh_memory=True,
                 extra=(("broker_bytes_per_conn", "lower", ("<=", 0.5), "resident bytes per idle connection"),
                        ("broker_cpu_us_per_conn", "lower", None, "broker CPU per connection (µs)"))),
        # Issue 12, backpressure, both brokers at their default limits. --window is per publisher:
        # 8 x 128 = 1,024 and 8 x 512 = 4,096 messages outstanding end to end.
        Scenario("fanin_q1_w1024", "fan-in 8→1, QoS 1, closed loop, 1,024 outstanding",
                 ["fanin", "--publishers", "8", "--qos", "1", "--duration", d, "--window", "128"],
                 "delivered_per_s", "higher", (">=", 3.0), defaults=True),
        Scenario("fanin_q1_w4096", "fan-in 8→1, QoS 1, closed loop, 4,096 outstanding",
                 ["fanin", "--publishers", "8", "--qos", "1", "--duration", d, "--window", "512"],
                 "delivered_per_s", "higher", (">=", 3.0), defaults=True),
        Scenario("firehose_q1", "firehose 8→1, QoS 1, open loop at 1,000,000 msg/s",
                 ["fanin", "--publishers", "8", "--qos", "1", "--rate", "1000000", "--duration", d],
                 "delivered_per_s", "higher", (">=", 3.0), defaults=True,
                 extra=(("sent_per_s", "higher", None, "sent msg/s (what the publishers got out)"),)),
        Scenario("stall_pairs", "100 pairs at 20,000 msg/s, QoS 1, plus 1 pair whose subscriber stalls",
                 stall_pairs + ["--stalled", "1", *stall], "latency_p99_us", "lower", defaults=True,
                 extra=stall_extra),
        Scenario("stall_pairs_baseline", "100 pairs at 20,000 msg/s, QoS 1, no stall",
                 stall_pairs, "latency_p99_us", "lower", defaults=True, extra=stall_extra),
    ]
    return s


# --- brokers ---------------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Broker:
    """A broker process for one run. `cpus`: the taskset CPU list, or None for unpinned."""

    def __init__(self, kind, binary, workdir, tls_files, cpus, shards):
        self.kind = kind
        self.binary = binary
        self.workdir = workdir
        self.tls_files = tls_files
        self.cpus = cpus
        self.shards = shards
        self.proc = None
        self.port = None
        self.log = None
        self.command = None

    def _prefix(self):
        return ["taskset", "-c", self.cpus] if self.cpus is not None else []

    def start(self, tls, log_path, defaults=False):
        self.log = open(log_path, "w")
        if self.kind in ("firehook", "baseline", "audit_off"):
            conf = self.workdir / "firehook.toml"
            conf.write_text(firehook_config(self.workdir, self.shards, tls, self.tls_files, defaults,
                                            has_rate_limits(self.binary), address_budgets(self.binary),
                                            audit=self.kind != "audit_off"))
            self.command = self._prefix() + [str(self.binary), "serve", "-c", str(conf)]
            self.proc = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 20
            while self.port is None and time.monotonic() < deadline and self.proc.poll() is None:
                for line in Path(log_path).read_text().splitlines():
                    m = LISTENER_RE.match(line)
                    if m:
                        self.port = int(m.group(3))
                time.sleep(0.02)
            if self.port is None:
                self.stop()
                raise RuntimeError(f"{self.kind} did not report its listener; see {log_path}")
        else:
            self.port = free_port()
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(mosquitto_config(self.port, tls, self.tls_files, defaults))
            self.command = self._prefix() + [str(self.binary), "-c", str(conf)]
            self.proc = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for_port(self.port, self.proc):
            self.stop()
            raise RuntimeError(f"{self.kind} did not start listening; see {log_path}")
        # Let the broker forget the probe connection before the generator reads its resident memory.
        time.sleep(0.2)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()
            self.log = None


RATE_KEYS = ("publish_rate", "publish_burst", "publish_bytes_rate", "publish_bytes_burst",
             "subscribe_rate", "subscribe_burst")
# Scenarios also run with the audit log off (issue 13: its cost): the data path, and connections,
# each of which is several audit records.
AUDIT_COST = ("fanin_q1", "pairs_q0", "conn_plain")
BUDGETS = (("max_connections_per_address", 10000000), ("connection_rate_per_address", 1000000),
           ("connection_burst_per_address", 10000000), ("max_pending_per_address", 10000000),
           ("max_pending_connections", 10000000), ("max_connections_per_network", 10000000),
           ("connection_rate_per_network", 1000000), ("connection_burst_per_network", 10000000),
           ("max_pending_per_network", 10000000))


@functools.lru_cache(maxsize=None)
def knows(binary, table, key):
    """Whether `binary` reads `key` of `[table]`: a --baseline from before it would refuse it."""
    with tempfile.TemporaryDirectory() as d:
        conf = Path(d) / "probe.toml"
        conf.write_text(f"[{table}]\n{key} = 1\n")
        return subprocess.run([str(binary), "check", "-c", str(conf)], capture_output=True).returncode == 0


def has_rate_limits(binary):
    """Whether `binary` knows the per-client rates (issue 14); a build from before does not."""
    return knows(binary, "limits", "publish_rate")


def address_budgets(binary):
    """The budgets of BUDGETS that `binary` knows (issue 14: per address, then per network); a
    build from before knows none or some."""
    return tuple((key, most) for key, most in BUDGETS if knows(binary, "abuse", key))


def firehook_config(workdir, shards, tls, tls_files, defaults=False, rates=True, budgets=BUDGETS, audit=True):
    # Lossless and unthrottled: the largest inflight window (Receive Maximum) and queue limits the
    # configuration accepts; no $SYS updates; authentication off (anonymous on loopback).
    # defaults: no [limits] at all (max_inflight 64, max_queued_messages 1000, max_queued_bytes
    # 16 MiB, max_connections 100,000: enough for every scenario that uses it).
    # rates: the per-client rates (issue 14) at their largest in both modes, so that they are
    # checked on every PUBLISH but never hold a generator back: the scenarios measure the data path
    # and the queue limits, and a generator publishes far more than the default 1,000 messages/s.
    # budgets: the budgets per address and network (issue 14, [abuse]) that the build knows, at
    # their largest outside defaults, so
    # that the conn scenarios' 10,000 connections from 127.0.0.1 are all admitted and the check of
    # every accept is measured, not skipped as an allowlist would; with defaults (at most ~200
    # connections) they hold at their defaults. A build without them (a --baseline from before
    # issue 14) gets none.
    listener = [
        "[[listener]]",
        'name = "bench"',
        'address = "127.0.0.1"',
        "port = 0",
        f'protocol = "{"mqtts" if tls else "mqtt"}"',
        "allow_anonymous = true",
        "auth = []",
    ]
    if tls:
        listener += ["  [listener.tls]", f'  cert = "{tls_files[0]}"', f'  key = "{tls_files[1]}"']
    return "\n".join([
        "[broker]",
        f"shards = {shards}",
        "sys_interval = 0",
        f'state_dir = "{workdir / "state"}"',
        "[log]",
        'level = "warn"',
        *(["[limits]"] if rates or not defaults else []),
        *([] if defaults else [
            "max_connections = 1000000",
            "max_inflight = 65535",
            "max_queued_messages = 10000000",
            "max_queued_bytes = 1099511627776",
        ]),
        *([f"{key} = 4294967295" for key in RATE_KEYS] if rates else []),
        *(["[abuse]"] + [f"{key} = {most}" for key, most in budgets] if budgets and not defaults else []),
        *([] if audit else ["[audit]", "enabled = false"]),
        *listener,
        "",
    ])


def mosquitto_config(port, tls, tls_files, defaults=False):
    # mosquitto.conf(5): max_inflight_messages 0 and max_queued_messages 0 are "no maximum", and
    # max_queued_bytes defaults to 0 (no maximum): nothing is dropped, QoS 0 included (a QoS 0
    # message is dropped only when a queue limit is reached). set_tcp_nodelay as the issue asks.
    # defaults: the three are left out, so mosquitto.conf(5)'s defaults hold: max_inflight_messages
    # 20, max_queued_messages 1000, max_queued_bytes 0; past them QoS 1/2 messages are dropped.
    lines = [
        # Started as root, Mosquitto would switch to the user "mosquitto", which cannot read the
        # generated certificate in our private temporary folder.
        *(["user root"] if os.geteuid() == 0 else []),
        "per_listener_settings false",
        "allow_anonymous true",
        "persistence false",
        *([] if defaults else ["max_inflight_messages 0", "max_queued_messages 0", "max_queued_bytes 0"]),
        "set_tcp_nodelay true",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "connection_messages false",
        f"listener {port} 127.0.0.1",
        "max_connections -1",
    ]
    if tls:
        lines += [f"certfile {tls_files[0]}", f"keyfile {tls_files[1]}"]
    return "\n".join(lines) + "\n"


def make_server_cert(tmp):
    """An ECDSA P-256 self-signed server certificate for 127.0.0.1 (the generator checks the IP SAN)."""
    key = tmp / "server.key"
    crt = tmp / "server.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2", "-sha256",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(key, 0o600)
    return crt, key


# --- running ---------------------------------------------------------------------------------

def busy_cpu_seconds():
    """CPU seconds all CPUs have spent busy since boot (/proc/stat: user to steal, less idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid):
    """CPU seconds (user + system) of process `pid` so far, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def run_once(bench_bin, sc, broker, gen_cpus, tls_files, outdir, label):
    own = sc.firehook_args if broker.kind in ("firehook", "baseline") else ()
    args = [str(bench_bin), *sc.args, *own, "--port", str(broker.port), "--broker-pid", str(broker.proc.pid),
            "--label", label, "--json"]
    if sc.tls:
        args += ["--tls", "--cafile", str(tls_files[0])]
    cmd = (["taskset", "-c", gen_cpus] if gen_cpus is not None else []) + args
    # What else the machine did meanwhile: the CPU time of all processes less the broker's and the
    # generator's. The load average cannot say it: the previous run's broker and generator are in it.
    load_before = sh("cat /proc/loadavg")
    busy0, broker0 = busy_cpu_seconds(), process_cpu_seconds(broker.proc.pid)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=240)
    elapsed = time.monotonic() - started
    busy1, broker1 = busy_cpu_seconds(), process_cpu_seconds(broker.proc.pid)
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_after = sh("cat /proc/loadavg")
    gen_s = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    other_cpu = None
    if broker0 is not None and broker1 is not None:
        other_cpu = max(0.0, (busy1 - busy0) - (broker1 - broker0) - gen_s) / max(elapsed, 1e-3)
    (outdir / f"{label}.stderr").write_text(p.stderr)
    result = None
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            result = json.loads(line)
    with open(outdir / "runs.jsonl", "a") as f:
        f.write(json.dumps({"label": label, "rc": p.returncode, "elapsed_s": round(elapsed, 2),
                            "load_before": load_before, "load_after": load_after,
                            "other_cpu": None if other_cpu is None else round(other_cpu, 2),
                            "command": cmd, "result": result}) + "\n")
    if result is not None:
        result["_other_cpu"] = other_cpu
    return p.returncode, result, cmd, p.stderr.strip()


def fmt(v, metric):
    if v is None:
        return "—"
    if metric.endswith("_us"):
        return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
    return f"{v:,.0f}"


def verdict(ratio, target):
    if target is None or ratio is None:
        return ""
    op, factor = target
    ok = ratio >= factor if op == ">=" else ratio <= factor
    if ok:
        return "met"
    if op == ">=":
        return f"missed: {ratio / factor:.0%} of the target"
    return f"missed: {ratio / factor:.1f}× the allowed"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=20).stdout.strip()
    except Exception as e:  # noqa: BLE001 (a description of the machine must not stop the benchmark)
        return f"({e})"


def source_commit(build):
    """The commit of the sources `build` was configured from (its CMakeCache.txt says which folder:
    this checkout, or another one, e.g. a clean copy built while this one has work in progress)."""
    src = ROOT
    cache = build / "CMakeCache.txt"
    if cache.exists():
        m = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.+)$", cache.read_text(errors="replace"), re.M)
        if m:
            src = Path(m.group(1).strip())
    q = shlex.quote(str(src))
    commit = sh(f"git -C {q} rev-parse --short HEAD 2>/dev/null") or "unknown"
    text = f"commit {commit}"
    if sh(f"git -C {q} status --porcelain src 2>/dev/null"):
        text += ", uncommitted changes in the tree"
    if src.resolve() != ROOT:
        text += f", sources in {src}"
    return text


def display_cmd(cmd, port):
    text = " ".join(shlex.quote(c) for c in cmd)
    text = re.sub(r"--port \d+", "--port $PORT", text)
    text = re.sub(r"--broker-pid \d+", "--broker-pid $BROKER_PID", text)
    text = re.sub(r"--label \S+ ", "", text)
    text = re.sub(r"--cafile \S+", "--cafile $TMP/server.crt", text)
    return text.replace(str(ROOT) + "/", "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="the Release build folder (holds src/app/firehook, bench/)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    ap.add_argument("--quick", action="store_true", help="short runs: a smoke test of the pipeline")
    ap.add_argument("--only", default="", help="comma-separated scenario keys, `unpinned` for the scaling runs and `scrape` for the "
                    "metrics scrape with 10,000 clients (default: all)")
    ap.add_argument("--micro", default="", help="a file with the micro-benchmarks' output, quoted in RESULTS.md")
    ap.add_argument("--mosquitto", default=shutil.which("mosquitto") or "/usr/sbin/mosquitto")
    ap.add_argument("--baseline", default="",
                    help="another firehook binary (e.g. an earlier commit's Release build) run side by side")
    opt = ap.parse_args()

    build = Path(opt.build).resolve()
    firehook = build / "src" / "app" / "firehook"
    bench_bin = build / "bench" / "firehook-bench"
    mosquitto = Path(opt.mosquitto)
    baseline = Path(opt.baseline).resolve() if opt.baseline else None
    kinds = ("firehook", "mosquitto") + (("baseline",) if baseline else ())
    binaries = {"firehook": firehook, "mosquitto": mosquitto, "baseline": baseline, "audit_off": firehook}
    for f in (firehook, bench_bin, mosquitto) + ((baseline,) if baseline else ()):
        if not os.access(f, os.X_OK):
            sys.exit(f"compare.py: {f} is missing or not executable")
    for tool in ("taskset", "openssl"):
        if shutil.which(tool) is None:
            sys.exit(f"compare.py: {tool} is needed")

    # 10,000 connections need as many descriptors in the broker and in the generator.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        broker_cpus, gen_cpus = str(cpus[0]), str(cpus[1])
    else:
        broker_cpus, gen_cpus = None, None
        print("compare.py: fewer than 2 CPUs: nothing is pinned; ratios are still comparable, "
              "absolute figures are not", file=sys.stderr)

    selected = scenarios(opt.quick)
    if opt.only:
        keys = set(opt.only.split(","))
        selected = [s for s in selected if s.key in keys]
    want_unpinned = not opt.only or "unpinned" in opt.only.split(",")

    outdir = build / "bench-results" / time.strftime("%Y%m%d-%H%M%S")
    outdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="firehook-bench-"))
    tls_files = make_server_cert(tmp)

    machine = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": sh("lscpu | sed -n 's/^Model name:[ \\t]*//p'"),
        "cpus": str(os.cpu_count()),
        "memory": sh("free -h | awk '/^Mem:/ {print $2}'"),
        "kernel": platform.release(),
        "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
        "firehook": sh(f"{shlex.quote(str(firehook))} version") + " (" + source_commit(build) + ")",
        "mosquitto": sh(f"{shlex.quote(str(mosquitto))} -h | head -1"),
        "baseline": (sh(f"{shlex.quote(str(baseline))} version") + " (commit " + sh(
            f"git -C {shlex.quote(str(baseline.parent))} rev-parse --short HEAD 2>/dev/null || echo unknown")
            + f", {baseline})") if baseline else "",
        "compiler": sh("c++ --version | head -1"),
        "openssl": sh("openssl version"),
        "load_before": sh("cat /proc/loadavg"),
    }
    print(f"compare.py: load before: {machine['load_before']}", file=sys.stderr)

    results = {}   # (scenario key, broker kind) -> list of result dicts
    failures = []  # text lines
    findings = []  # text lines: losses of Mosquitto (or a baseline) at its default limits
    commands = {}  # scenario key -> (broker command, generator command) of the first run
    broker_commands = {}
    guarantee_broken = False
    t_start = time.monotonic()

    def one(sc, kind, cpus_for_broker, gen, shards, run):
        nonlocal guarantee_broken
        label = f"{sc.key}-{kind}{'' if cpus_for_broker is not None else '-unpinned'}-run{run}"
        wd = tmp / label
        wd.mkdir()
        b = Broker(kind, binaries[kind], wd, tls_files, cpus_for_broker, shards)
        try:
            b.start(sc.tls, outdir / f"{label}.broker.log", sc.defaults)
        except RuntimeError as e:
            failures.append(f"{label}: {e}")
            print(f"compare.py: {label}: {e}", file=sys.stderr)
            return
        try:
            rc, res, cmd, err = run_once(bench_bin, sc, b, gen, tls_files, outdir, label)
        except subprocess.TimeoutExpired:
            rc, res, cmd, err = 2, None, [], "timed out after 240 s"
        finally:
            b.stop()
        commands.setdefault(sc.key + ("" if cpus_for_broker is not None else "-unpinned"), (b.command, cmd))
        broker_commands.setdefault(kind + ("" if cpus_for_broker is not None else ", unpinned"), b.command)
        key = (sc.key + ("" if cpus_for_broker is not None else "-unpinned"), kind)
        metric = res.get(sc.metric) if res else None
        print(f"compare.py: {label}: rc={rc} {sc.metric}={metric} gen_cpu={res.get('gen_cpu') if res else None} "
              f"broker_cpu={res.get('broker_cpu') if res else None}", file=sys.stderr)
        if rc == 1 and sc.defaults and kind != "firehook":
            # At its default limits Mosquitto drops QoS 1 messages for a slow subscriber (and so did
            # Firehook before backpressure): what the scenario is there to show, not a failure.
            last = err.splitlines()[-1] if err else ""
            findings.append(f"{label}: {last}")
            print(f"compare.py: {label}: finding: {last}", file=sys.stderr)
        elif rc == 1:
            guarantee_broken = True
            last = err.splitlines()[-1] if err else ""
            failures.append(f"{label}: DELIVERY GUARANTEE BROKEN: {last}")
            print(f"compare.py: {label}: FAIL: {last}", file=sys.stderr)
        elif rc != 0:
            last = err.splitlines()[-1] if err else f"exit status {rc}"
            failures.append(f"{label}: {last}")
        if res is not None and rc in (0, 1):
            results.setdefault(key, []).append(res)

    for run in range(1, opt.runs + 1):
        for sc in selected:
            for kind in kinds + (("audit_off",) if sc.key in AUDIT_COST else ()):
                one(sc, kind, broker_cpus, gen_cpus, 1, run)
        if want_unpinned and broker_cpus is not None:
            # The shards must scale: Firehook with one shard per core, nothing pinned.
            for sc in scenarios(opt.quick):
                if sc.key in ("fanin_q0", "pairs_q0"):
                    one(sc, "firehook", None, None, 0, run)

    if not opt.only or "scrape" in opt.only.split(","):
        conns = 1000 if opt.quick else 10000
        try:
            machine["scrape"] = measure_scrape(firehook, bench_bin, tmp / "scrape", tls_files, broker_cpus,
                                               gen_cpus, conns, outdir)
        except (OSError, subprocess.SubprocessError) as e:
            machine["scrape"] = {"error": str(e)}
        print(f"compare.py: metrics scrape: {machine['scrape']}", file=sys.stderr)
    machine["load_after"] = sh("cat /proc/loadavg")
    elapsed = time.monotonic() - t_start
    print(f"compare.py: load after: {machine['load_after']}; {elapsed:.0f} s", file=sys.stderr)

    write_results(Path(opt.out), opt, machine, selected, results, failures, findings, commands,
                  broker_commands, elapsed, broker_cpus, gen_cpus, want_unpinned,
                  Path(opt.micro) if opt.micro else None, outdir, kinds)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"compare.py: wrote {opt.out}; raw results in {outdir}", file=sys.stderr)
    if guarantee_broken:
        print("compare.py: FAIL: a broker lost an acknowledged QoS 1/2 message (see above)", file=sys.stderr)
        return 1
    return 0


def write_results(out, opt, machine, selected, results, failures, findings, commands, broker_commands,
                  elapsed, broker_cpus, gen_cpus, want_unpinned, micro, outdir, kinds):
    """RESULTS.md: the throughput section, the backpressure section, then the hand-written notes.

    Each of the two generated sections is rewritten only when the run had scenarios of its own
    (the unpinned runs count for the first); otherwise the file's section is kept as it was, so a
    run of only some scenarios (--only) never drops the other section's figures.
    """
    old_main, old_backpressure, kept = "", "", ""
    if out.exists():
        text = out.read_text()
        head, kept = text.split(NOTES_MARKER, 1) if NOTES_MARKER in text else (text, "")
        if BACKPRESSURE_BEGIN in head and BACKPRESSURE_END in head:
            before, rest = head.split(BACKPRESSURE_BEGIN, 1)
            section, after = rest.split(BACKPRESSURE_END, 1)
            old_main = (before + after).rstrip("\n") + "\n"
            old_backpressure = BACKPRESSURE_BEGIN + section + BACKPRESSURE_END + "\n"
        else:
            old_main = head
    main_scenarios = [sc for sc in selected if not sc.defaults]
    backpressure_scenarios = [sc for sc in selected if sc.defaults]
    if main_scenarios or (want_unpinned and broker_cpus is not None):
        top = "\n".join(main_section(opt, machine, main_scenarios, results, failures, commands,
                                      broker_commands, elapsed, broker_cpus, gen_cpus, want_unpinned, micro,
                                      outdir, kinds)) + "\n"
    else:
        top = old_main or "# Firehook vs Mosquitto: side-by-side benchmark\n\n"
        if machine.get("scrape"):  # --only scrape: its section replaces the file's
            top = replace_scrape_section(top, "\n".join(scrape_section(machine)) + "\n")
    if backpressure_scenarios:
        backpressure = "\n".join(
            [BACKPRESSURE_BEGIN] + backpressure_section(opt, machine, backpressure_scenarios, results, failures,
                                                        findings, commands, elapsed, outdir)
            + [BACKPRESSURE_END]) + "\n"
    else:
        backpressure = old_backpressure
    out.write_text(top + (("\n" + backpressure) if backpressure else "") + "\n" + NOTES_MARKER +
                   (kept if kept else "\n"))


def main_section(opt, machine, selected, results, failures, commands, broker_commands, elapsed, broker_cpus,
                 gen_cpus, want_unpinned, micro, outdir, kinds):
    """The throughput scenarios (issue 6): the lines of the top of RESULTS.md."""
    def med(key, kind, metric):
        return median([r.get(metric) for r in results.get((key, kind), [])])

    L = []
    L.append("# Firehook vs Mosquitto: side-by-side benchmark")
    L.append("")
    L.append(f"Written by `bench/compare.py` (`make bench`) on {machine['date']}, "
             f"{opt.runs} run(s) per scenario and broker{', --quick (short runs)' if opt.quick else ''}; "
             f"the whole comparison took {elapsed / 60:.1f} minutes. Each figure is the median of the runs. "
             "Ratio = Firehook / Mosquitto. Both brokers are configured here to be lossless and unthrottled; "
             f"the scenarios at their default limits are in [{BACKPRESSURE_TITLE}](#"
             f"{anchor(BACKPRESSURE_TITLE)}) below.")
    L.append("")
    L.append("## Results")
    L.append("")
    busy = busy_note(machine, results, selected)
    if busy:
        L.append(busy)
        L.append("")
    L.append("| scenario | figure | Firehook | Mosquitto | ratio | target | verdict |")
    L.append("| --- | --- | ---: | ---: | ---: | --- | --- |")
    for sc in selected:
        rows = [(sc.metric, sc.better, sc.target, metric_title(sc.metric))] + list(sc.extra)
        for metric, _better, target, title in rows:
            f = med(sc.key, "firehook", metric)
            m = med(sc.key, "mosquitto", metric)
            ratio = f / m if f is not None and m not in (None, 0) else None
            tgt = f"{target[0]} {target[1]:g}×" if target else "—"
            why = verdict(ratio, target)
            broken = [k for k in ("firehook", "mosquitto") if failed_runs(failures, sc.key, k)]
            if broken:
                why = (why + "; " if why else "") + ", ".join(
                    f"{k}: {failed_runs(failures, sc.key, k)} of {opt.runs} runs failed (see below)" for k in broken)
            L.append(f"| {sc.title} | {title} | {fmt(f, metric)} | {fmt(m, metric)} | "
                     f"{'—' if ratio is None else f'{ratio:.2f}'} | {tgt} | {why} |")
    if want_unpinned and broker_cpus is not None:
        for key, title in (("fanin_q0", "fan-in 8→1, QoS 0"), ("pairs_q0", "100 pairs, QoS 0")):
            pinned = med(key, "firehook", "delivered_per_s")
            unpinned = med(key + "-unpinned", "firehook", "delivered_per_s")
            ratio = unpinned / pinned if pinned and unpinned else None
            L.append(f"| {title}: Firehook unpinned (shards = 0) vs pinned (shards = 1) | delivered msg/s | "
                     f"{fmt(unpinned, 'x')} | (pinned: {fmt(pinned, 'x')}) | "
                     f"{'—' if ratio is None else f'{ratio:.2f}'} | >= 1.6× | {verdict(ratio, ('>=', 1.6))} |")
    L.append("")
    if "baseline" in kinds:
        L += before_and_after(selected, results, machine)
    L += audit_cost(selected, results)
    L += scrape_section(machine)
    L.append("### Generator and broker CPU (medians; 1.00 = one core busy all the time)")
    L.append("")
    L.append("A generator near 1.00 on its core could be what limits a closed-loop figure; a pinned broker near "
             "1.00 is saturated, as it should be in the throughput scenarios.")
    L.append("")
    L.append("| scenario | broker | generator CPU | broker CPU | runs ok | lost | duplicated | out of order |")
    L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    keys = [sc.key for sc in selected]
    if want_unpinned and broker_cpus is not None:
        keys += ["fanin_q0-unpinned", "pairs_q0-unpinned"]
    for key in keys:
        for kind in kinds:
            rs = results.get((key, kind), [])
            if not rs:
                continue
            gen = median([r.get("gen_cpu") for r in rs])
            brk = median([r.get("broker_cpu") for r in rs])
            oks = sum(1 for r in rs if r.get("ok"))
            lost = sum(r.get("lost", 0) for r in rs)
            dup = sum(r.get("duplicated", 0) for r in rs)
            ooo = sum(r.get("out_of_order", 0) for r in rs)
            L.append(f"| {key} | {kind} | {'—' if gen is None else f'{gen:.2f}'} | "
                     f"{'—' if brk is None else f'{brk:.2f}'} | {oks}/{opt.runs} | {lost:,} | {dup:,} | {ooo:,} |")
    L.append("")
    main_failures = [f for f in failures if run_key(f) in keys]
    if main_failures:
        L.append("### Failed runs")
        L.append("")
        for f in main_failures:
            L.append(f"- {f}")
        L.append("")
    L.append("## Machine")
    L.append("")
    for k in ("cpu", "cpus", "memory", "os", "kernel", "compiler", "openssl", "firehook", "mosquitto", "baseline"):
        if machine[k]:
            L.append(f"- {k}: {machine[k]}")
    L.append(f"- load average (1, 5, 15 min) before: {machine['load_before']}; after: {machine['load_after']}")
    L.append(f"- pinning: broker on CPU {broker_cpus}, generator on CPU {gen_cpus} (one generator thread)"
             if broker_cpus is not None else "- pinning: none (fewer than 2 CPUs)")
    L.append("")
    L.append("## How it was run")
    L.append("")
    build = Path(opt.build).resolve()
    build_name = build.relative_to(ROOT) if build.is_relative_to(ROOT) else build
    L.append("`make bench` runs `scripts/bench build/release`: it builds Release, runs the micro-benchmarks, "
             f"then `bench/compare.py`. This file came from `bench/compare.py --build {build_name} --runs {opt.runs}"
             f"{' --quick' if opt.quick else ''}`. For every run a fresh broker is started with a generated "
             "configuration on a free loopback port; runs are interleaved (run 1 of every scenario on both "
             "brokers, then run 2, ...). Raw JSON lines and broker logs: "
             f"`{outdir.relative_to(ROOT) if outdir.is_relative_to(ROOT) else outdir}`.")
    L.append("")
    L.append("Scale: each closed-loop run publishes for "
             f"{'1' if opt.quick else '3'} s (then waits for what is in flight), each open-loop run for "
             f"{'1' if opt.quick else '3'} s at 20,000 msg/s, and the connection runs open "
             f"{'1,000' if opt.quick else '10,000'} connections and hold them 2 s, so that these scenarios "
             "take about 7 minutes on 2 cores (the backpressure scenarios below about 4 more) and `make bench`, "
             "micro-benchmarks included, about 16 minutes without a first Release build. Longer runs move the "
             "medians by less than the run-to-run spread on a quiet machine; on a shared one the spread dominates.")
    L.append("")
    L.append("Broker configurations (ports are chosen per run):")
    L.append("")
    L.append("```toml\n# firehook.toml\n" + firehook_config(Path("$TMP"), 1, False, None).rstrip() + "\n```")
    L.append("")
    L.append("```\n# mosquitto.conf\n" + mosquitto_config("$PORT", False, None).rstrip() + "\n```")
    L.append("")
    L.append("With TLS, Firehook's listener is `protocol = \"mqtts\"` with `[listener.tls] cert`/`key`, and "
             "Mosquitto's has `certfile`/`keyfile`: a self-signed ECDSA P-256 certificate for IP 127.0.0.1 made "
             "by `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1`; the generator verifies it (`--cafile`). Unpinned Firehook "
             "runs use `shards = 0` (one per core).")
    L.append("")
    L.append("Commands (first run of each scenario):")
    L.append("")
    L.append("```")
    for kind, bc in broker_commands.items():
        L.append(f"# {kind}: " + re.sub(r"\S*/firehook-bench-[^/]+/[^/]+/", "$TMP/$RUN/", display_cmd(bc, None)))
    main_keys = {sc.key for sc in selected} | {"fanin_q0-unpinned", "pairs_q0-unpinned"}
    for key, (_bc, gc) in commands.items():
        if gc and key in main_keys:
            L.append(f"# {key}\n" + display_cmd(gc, None))
    L.append("```")
    L.append("")
    if micro is not None and micro.exists():
        L.append("## Micro-benchmarks (same build)")
        L.append("")
        L.append("```")
        L.append(micro.read_text().rstrip())
        L.append("```")
        L.append("")
    return L


def backpressure_section(opt, machine, selected, results, failures, findings, commands, elapsed, outdir):
    """The backpressure scenarios (issue 12), both brokers at their default limits."""
    def rs(key, kind):
        return results.get((key, kind), [])

    def med(key, kind, metric):
        return median([r.get(metric) for r in rs(key, kind)])

    def lost(key, kind):
        runs = rs(key, kind)
        if not runs:
            return "—"
        per_run = [r.get("lost_acked", 0) + r.get("stalled_lost_acked", 0) for r in runs]
        total = sum(per_run)
        return "0" if total == 0 else f"{total:,} ({sum(1 for n in per_run if n)}/{len(runs)} runs)"

    keys = {sc.key for sc in selected}
    others = [r.get("_other_cpu") for sc in selected for kind in ("firehook", "mosquitto")
              for r in rs(sc.key, kind) if r.get("_other_cpu") is not None]
    L = [f"## {BACKPRESSURE_TITLE}", ""]
    L.append(f"Written by `bench/compare.py` on {machine['date']}, {opt.runs} run(s) per scenario and broker"
             f"{', --quick (short runs)' if opt.quick else ''}, interleaved; each figure is the median of the "
             f"runs (the comparison took {elapsed / 60:.1f} minutes in all). Firehook: {machine['firehook']}; "
             f"{machine['mosquitto']}. Load average (1, 5, 15 min) before: {machine['load_before']}; after: "
             f"{machine['load_after']}" + (
                 f"; other processes used {statistics.median(others):.2f} of the {machine['cpus']} CPUs in the median run "
                 f"(at most {max(others):.2f}; see Runs)." if others else "."))
    L.append("")
    L.append("Both brokers run with their **default limits**: Firehook with its default queue limits "
             "(`max_inflight` 64, `max_queued_messages` 1000, `max_queued_bytes` 16 MiB, "
             "`slow_subscriber_timeout` 30 s; the per-client rates lifted as in every scenario, since a "
             "generator publishes far more than a device's 1,000 messages/s), so that a connected QoS 1 subscriber past its bounds slows "
             "the publishers feeding it ([flow control](../docs/broker.md#flow-control)); Mosquitto with "
             "mosquitto.conf(5)'s defaults (`max_inflight_messages` 20, `max_queued_messages` 1000, "
             "`max_queued_bytes` 0 = none), past which it drops QoS 1 messages it has acknowledged. "
             "*lost* counts those: acknowledged QoS 1 messages never delivered, summed over the runs. A loss "
             "fails the run for Firehook; for Mosquitto it is a finding, listed below, and its throughput "
             "counts only what it delivered. Closed loop: `--window` is per publisher (8 × 128 = 1,024 and "
             "8 × 512 = 4,096 messages outstanding end to end). Firehose: open loop far above what either "
             "broker sustains, so each publisher sends whenever its inflight window lets it.")
    L.append("")
    L.append("| scenario | figure | Firehook | Mosquitto | ratio | target | verdict | lost, Firehook | "
             "lost, Mosquitto |")
    L.append("| --- | --- | ---: | ---: | ---: | --- | --- | ---: | ---: |")
    for sc in selected:
        rows = [(sc.metric, sc.better, sc.target, metric_title(sc.metric))] + list(sc.extra)
        for i, (metric, _better, target, title) in enumerate(rows):
            f = med(sc.key, "firehook", metric)
            m = med(sc.key, "mosquitto", metric)
            ratio = f / m if f is not None and m not in (None, 0) else None
            why = verdict(ratio, target)
            broken = [k for k in ("firehook", "mosquitto") if failed_runs(failures, sc.key, k)]
            if broken:
                why = (why + "; " if why else "") + ", ".join(
                    f"{k}: {failed_runs(failures, sc.key, k)} of {opt.runs} runs failed (see below)" for k in broken)
            lf, lm = (lost(sc.key, "firehook"), lost(sc.key, "mosquitto")) if i == 0 else ("", "")
            L.append(f"| {sc.title if i == 0 else ''} | {title} | {fmt(f, metric)} | {fmt(m, metric)} | "
                     f"{'—' if ratio is None else f'{ratio:.2f}'} | "
                     f"{f'{target[0]} {target[1]:g}×' if target else '—'} | {why} | {lf} | {lm} |")
    L.append("")
    if {"stall_pairs", "stall_pairs_baseline"} <= keys:
        L += stall_tables(next(sc for sc in selected if sc.key == "stall_pairs"), rs, med)
    L.append("### Runs")
    L.append("")
    L.append("Medians of CPU use (1.00 = one core busy all the time), losses summed over the runs, and the CPU "
             "that other processes used on the machine during each run (lowest–highest of the runs, in cores; "
             "everything but the broker and the generator): what the two pinned cores were shared with.")
    L.append("")
    L.append("| scenario | broker | generator CPU | broker CPU | runs ok | lost | duplicated | out of order | "
             "other processes' CPU |")
    L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for sc in selected:
        for kind in ("firehook", "mosquitto", "baseline"):
            runs = rs(sc.key, kind)
            if not runs:
                continue
            gen = median([r.get("gen_cpu") for r in runs])
            brk = median([r.get("broker_cpu") for r in runs])
            others = [r.get("_other_cpu") for r in runs if r.get("_other_cpu") is not None]
            dup = sum(r.get("duplicated", 0) + r.get("stalled_duplicated", 0) for r in runs)
            ooo = sum(r.get("out_of_order", 0) + r.get("stalled_out_of_order", 0) for r in runs)
            L.append(f"| {sc.key} | {kind} | {'—' if gen is None else f'{gen:.2f}'} | "
                     f"{'—' if brk is None else f'{brk:.2f}'} | {sum(1 for r in runs if r.get('ok'))}/{opt.runs} | "
                     f"{lost(sc.key, kind)} | {dup:,} | {ooo:,} | "
                     f"{f'{min(others):.2f}–{max(others):.2f}' if others else '—'} |")
    L.append("")
    mine = [f for f in findings if run_key(f) in keys]
    if mine:
        L.append("### Losses at default limits (findings, not failures)")
        L.append("")
        for f in mine:
            L.append(f"- {f}")
        L.append("")
    bad = [f for f in failures if run_key(f) in keys]
    if bad:
        L.append("### Failed runs")
        L.append("")
        for f in bad:
            L.append(f"- {f}")
        L.append("")
    L.append("### Configurations and commands")
    L.append("")
    L.append("```toml\n# firehook.toml\n" + firehook_config(Path("$TMP"), 1, False, None, True).rstrip() + "\n```")
    L.append("")
    L.append("```\n# mosquitto.conf\n" + mosquitto_config("$PORT", False, None, True).rstrip() + "\n```")
    L.append("")
    L.append("Brokers pinned to one core and the generator to the other, as above. Commands (first run of each "
             f"scenario; raw results in `{outdir.relative_to(ROOT) if outdir.is_relative_to(ROOT) else outdir}`):")
    L.append("")
    L.append("```")
    for key, (_bc, gc) in commands.items():
        if gc and key in keys:
            L.append(f"# {key}\n" + display_cmd(gc, None))
    L.append("```")
    L.append("")
    return L


def stall_tables(sc, rs, med):
    """stall_pairs against stall_pairs_baseline, per broker: what one stalled subscriber costs the others."""
    def arg(name):
        return sc.args[sc.args.index(name) + 1]

    L = ["### One stalled subscriber among 100 pairs", "",
         "For each broker, the 100 pairs' figures in a run with one more pair whose subscriber stops reading its "
         f"socket for {arg('--stall-for')} s ({arg('--stall-after')} s into {arg('--duration')} s of publishing; "
         "its publisher publishes at the same rate as the others), against a run without that pair. "
         "Slowdown = with / without "
         "for latency, without / with for throughput; the issue's bound is 1.5×. The 100 pairs publish on an "
         "open loop (20,000 msg/s in all), so their throughput is that rate as long as the broker keeps up, "
         "and latency includes any wait of the publishers. Each figure is the median of the runs, with their "
         "range in brackets. The generator is close to saturating its core at this load (its CPU is in the Runs "
         "table), so p99 latency varies from run to run by several times: a slowdown past the bound whose "
         "ranges overlap is not shown by these runs either way, and says so.", "",
         "| broker | figure (the 100 pairs) | without the stall | with the stall | slowdown | target | verdict |",
         "| --- | --- | ---: | ---: | ---: | --- | --- |"]

    def spread(key, kind, metric):
        values = [r.get(metric) for r in rs(key, kind) if r.get(metric) is not None]
        return (min(values), max(values)) if values else None

    for kind in ("firehook", "mosquitto"):
        for metric, title, better in (("delivered_per_s", "delivered msg/s", "higher"),
                                      ("latency_p99_us", "p99 latency (µs)", "lower"),
                                      ("latency_p50_us", "p50 latency (µs)", "lower")):
            without = med("stall_pairs_baseline", kind, metric)
            with_ = med("stall_pairs", kind, metric)
            slow = None
            if without and with_:
                slow = without / with_ if better == "higher" else with_ / without
            target = ("<=", 1.5) if metric != "latency_p50_us" else None
            a, b = spread("stall_pairs_baseline", kind, metric), spread("stall_pairs", kind, metric)
            cells = [f"{fmt(m, metric)} ({fmt(r[0], metric)}–{fmt(r[1], metric)})" if r else fmt(m, metric)
                     for m, r in ((without, a), (with_, b))]
            judged = verdict(slow, target)
            if judged.startswith("missed") and a and b and a[0] <= b[1] and b[0] <= a[1]:
                judged = f"not shown: {judged[len('missed: '):]} in the medians, within the run-to-run spread"
            L.append(f"| {kind} | {title} | {cells[0]} | {cells[1]} | "
                     f"{'—' if slow is None else f'{slow:.2f}'} | {'<= 1.5×' if target else '—'} | {judged} |")
    L += ["", "The stalled pair itself (medians): what its publisher sent, what its subscriber received in the end, "
          "how long its subscriber read nothing, how far its publisher fell behind its schedule (held back by "
          "withheld acknowledgements, or by the broker not reading it), and when its last message arrived.", "",
          "| broker | sent | delivered | lost | reading paused (s) | publisher's max send lag (s) | "
          "last delivery (s into the run) |",
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for kind in ("firehook", "mosquitto"):
        runs = rs("stall_pairs", kind)
        if not runs:
            continue
        lost = [r.get("stalled_lost_acked", 0) for r in runs]
        lag = med("stall_pairs", kind, "stalled_send_lag_max_us")
        L.append(f"| {kind} | {fmt(med('stall_pairs', kind, 'stalled_sent'), 'x')} | "
                 f"{fmt(med('stall_pairs', kind, 'stalled_delivered'), 'x')} | "
                 f"{sum(lost):,} ({sum(1 for n in lost if n)}/{len(runs)} runs) | "
                 f"{med('stall_pairs', kind, 'stalled_read_paused_s') or 0:.1f} | "
                 f"{'—' if lag is None else f'{lag / 1e6:.2f}'} | "
                 f"{med('stall_pairs', kind, 'stalled_last_delivery_s') or 0:.2f} |")
    L.append("")
    return L


def run_key(line):
    """The scenario key of a failure or finding line, which starts with the run's label."""
    m = re.match(r"(.+?)-(firehook|mosquitto|baseline)(-unpinned)?-run\d+", line)
    return (m.group(1) + (m.group(3) or "")) if m else ""


def anchor(title):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def paired_rows(rows, results, before_kind, after_kind, target=None):
    """Table rows comparing two kinds of Firehook run, per (scenario, metric, title) of `rows`: the
    median of each with the range of its runs in brackets, after / before, whether the ranges
    overlap, and (with `target`) the verdict on the ratio."""
    def values(key, kind, metric):
        return [r.get(metric) for r in results.get((key, kind), []) if r.get(metric) is not None]

    def cell(vals, metric):
        if not vals:
            return "—"
        return f"{fmt(statistics.median(vals), metric)} ({fmt(min(vals), metric)}–{fmt(max(vals), metric)})"

    L = []
    for sc, metric, title in rows:
        bv, av = values(sc.key, before_kind, metric), values(sc.key, after_kind, metric)
        ratio = statistics.median(av) / statistics.median(bv) if av and bv and statistics.median(bv) else None
        overlap = "—" if not (av and bv) else ("yes" if min(av) <= max(bv) and min(bv) <= max(av) else "no")
        row = (f"| {sc.title} | {title} | {cell(bv, metric)} | {cell(av, metric)} | "
               f"{'—' if ratio is None else f'{ratio:.3f}'} | {overlap} |")
        if target:
            row += f" {target[0]} {target[1]:g}× | {verdict(ratio, target)} |"
        L.append(row)
    return L


def before_and_after(selected, results, machine):
    """The rows of the --baseline comparison: each figure before (baseline) and after (this build)."""
    L = ["## Before and after", "",
         f"Baseline: {machine['baseline']}; after: this build ({machine['firehook']}). Median of the runs, "
         "with their range in brackets; ratio = after / before. A ratio whose ranges overlap is within the "
         "run-to-run spread.", "",
         "| scenario | figure | before | after | ratio | ranges overlap |",
         "| --- | --- | ---: | ---: | ---: | --- |"]
    rows = [(sc, metric, title) for sc in selected
            for metric, _better, _target, title in [(sc.metric, sc.better, sc.target, metric_title(sc.metric))]
            + list(sc.extra)]
    L += paired_rows(rows, results, "baseline", "firehook")
    L.append("")
    return L


def audit_cost(selected, results):
    """Issue 13: the same build with its audit log on (the default) and off ([audit] enabled = false)."""
    rows = [(sc, sc.metric, metric_title(sc.metric)) for sc in selected if sc.key in AUDIT_COST]
    if not rows:
        return []
    L = ["## The audit log on and off", "",
         "The same build, with its audit log on (the default: every connection, authentication and "
         "disconnection is a hash-chained record, written by a thread of its own) and off (`[audit] enabled = "
         "false`), interleaved with the other runs. Median of the runs, with their range in brackets; ratio = "
         "on / off; the target is 0.9 (within 10%).", "",
         "| scenario | figure | audit off | audit on | ratio | ranges overlap | target | verdict |",
         "| --- | --- | ---: | ---: | ---: | --- | --- | --- |"]
    L += paired_rows(rows, results, "audit_off", "firehook", (">=", 0.9))
    L.append("")
    return L


def measure_scrape(firehook, bench_bin, workdir, tls_files, broker_cpus, gen_cpus, conns, outdir):
    """Issue 13: how long a GET /metrics takes while `conns` clients are connected. The broker
    (one shard, pinned like the scenarios) gets an admin endpoint; firehook-bench opens the
    connections and holds them; this process scrapes every 0.2 s meanwhile and keeps the times of
    the scrapes that saw them all connected, and of a few before the first connection."""
    workdir.mkdir()
    conf = workdir / "firehook.toml"
    conf.write_text(firehook_config(workdir, 1, False, tls_files, rates=has_rate_limits(firehook),
                                    budgets=address_budgets(firehook))
                    + '[admin]\naddress = "127.0.0.1"\nport = 0\n')
    token = subprocess.run([str(firehook), "admin", "-c", str(conf), "token", "add", "bench"], capture_output=True,
                           text=True, check=True, timeout=30).stdout.strip()
    log_path = outdir / "scrape.broker.log"
    prefix = ["taskset", "-c", broker_cpus] if broker_cpus is not None else []
    with open(log_path, "w") as log:
        proc = subprocess.Popen(prefix + [str(firehook), "serve", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        port = admin = None
        deadline = time.monotonic() + 20
        while (port is None or admin is None) and time.monotonic() < deadline and proc.poll() is None:
            for line in log_path.read_text().splitlines():
                m, a = LISTENER_RE.match(line), ADMIN_RE.match(line)
                port = int(m.group(3)) if m else port
                admin = int(a.group(2)) if a else admin
            time.sleep(0.02)
        if port is None or admin is None:
            return {"error": f"the broker did not report its listeners; see {log_path}"}

        def scrape():
            req = urllib.request.Request(f"http://127.0.0.1:{admin}/metrics",
                                         headers={"Authorization": f"Bearer {token}"})
            t0 = time.perf_counter()
            with urllib.request.urlopen(req, timeout=10) as r:
                body = r.read()
            took = time.perf_counter() - t0
            m = re.search(rb"^firehook_clients_connected (\d+)", body, re.M)
            return took, int(m.group(1)) if m else -1, len(body)

        idle = [scrape()[0] for _ in range(10)]
        gen = subprocess.Popen((["taskset", "-c", gen_cpus] if gen_cpus is not None else [])
                               + [str(bench_bin), "conn", "--connections", str(conns), "--hold", "6", "--port",
                                  str(port), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        loaded, size = [], 0
        while gen.poll() is None:
            took, connected, size = scrape()
            if connected >= conns:
                loaded.append(took)
            time.sleep(0.2)
        gen.communicate(timeout=60)
        if not loaded:
            return {"error": f"no scrape saw {conns} clients connected (generator exit status {gen.returncode})"}
        return {"clients": conns, "scrapes": len(loaded), "median_ms": statistics.median(loaded) * 1e3,
                "max_ms": max(loaded) * 1e3, "idle_median_ms": statistics.median(idle) * 1e3, "bytes": size}
    finally:
        proc.terminate()
        proc.wait(timeout=15)


SCRAPE_TITLE = "## Metrics scrape with many clients connected"


def replace_scrape_section(text, section):
    """`text` with its scrape section (up to the next heading) replaced by `section`, or with
    `section` added at the end when it had none."""
    lines = text.splitlines(keepends=True)
    if SCRAPE_TITLE + "\n" not in lines:
        return text.rstrip("\n") + "\n\n" + section
    start = lines.index(SCRAPE_TITLE + "\n")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return "".join(lines[:start]) + section + "".join(lines[end:])


def scrape_section(machine):
    s = machine.get("scrape")
    if not s:
        return []
    L = [SCRAPE_TITLE, ""]
    if "error" in s:
        return L + [f"Not measured: {s['error']}.", ""]
    return L + [f"`GET /metrics` on the admin endpoint (plain HTTP on loopback, bearer token) while "
                f"{s['clients']:,} clients were connected to the pinned broker: median {s['median_ms']:.2f} ms, "
                f"at most {s['max_ms']:.2f} ms over {s['scrapes']} scrapes ({s['bytes']:,} bytes each); with no "
                f"client connected: median {s['idle_median_ms']:.2f} ms. The figures are the statistics table's "
                "counters: no shard is asked for anything and nothing is counted per client at scrape time "
                "(docs/monitoring.md).", ""]


def busy_note(machine, results, selected):
    """A warning when the machine was not quiet: the 1-minute load or starved pinned brokers."""
    try:
        loads = [float(machine["load_before"].split()[0]), float(machine["load_after"].split()[0])]
    except (ValueError, IndexError):
        loads = []
    # The closed-loop runs should keep the pinned broker's core busy; a broker that got much less
    # than that shared its core with something else.
    cpu = [r.get("broker_cpu") for sc in selected if sc.metric == "delivered_per_s"
           for kind in ("firehook", "mosquitto") for r in results.get((sc.key, kind), [])]
    cpu = [c for c in cpu if c is not None]
    starved = cpu and statistics.median(cpu) < 0.8
    # Only the load before counts: during and right after the runs the broker and the generator
    # themselves keep the 1-minute load near 2.
    if not (loads and loads[0] > 1.0) and not starved:
        return ""
    text = ("**The machine was not quiet during this run** (1-minute load average "
            f"{' → '.join(f'{x:.1f}' for x in loads)} on {machine['cpus']} CPUs")
    if cpu:
        text += f"; median CPU of the pinned broker in the closed-loop runs {statistics.median(cpu):.2f} of its core"
    text += ("). Other processes shared the pinned cores, so absolute figures are low and noisy; the ratios "
             "are less affected because the runs of both brokers were interleaved, but read them as indicative.")
    return text


def failed_runs(failures, key, kind):
    """Runs of scenario `key` on broker `kind` that did not finish cleanly (their figures are left out)."""
    return sum(1 for f in failures if f.startswith(f"{key}-{kind}-run"))


def metric_title(metric):
    return {
        "delivered_per_s": "delivered msg/s",
        "latency_p99_us": "p99 latency (µs)",
        "conn_per_s": "connections/s",
        "latency_p50_us": "p50 latency (µs)",
        "sent_per_s": "sent msg/s",
    }.get(metric, metric)


if __name__ == "__main__":
    sys.exit(main())
