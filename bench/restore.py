#!/usr/bin/python3
"""Restart time with a full durable store (issue 12): fills a broker's store with N retained messages
and S persistent sessions (each subscribed, with M queued QoS 1 messages), stops it, starts it again
on the same state_dir and prints how long the start took until it accepted connections.

    bench/restore.py --firehook build/release/src/app/firehook [--retained 100000 --sessions 10000]

A benchmark program: it prints figures and never fails on a timing."""

import argparse
import re
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

LISTENER = re.compile(r'listener "bench" mqtt on [^ ]+:(\d+)')


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(ptype_flags, body):
    return bytes([ptype_flags]) + varint(len(body)) + body


def utf8(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def connect(client_id, clean):
    flags = 0x02 if clean else 0x00
    return packet(0x10, utf8("MQTT") + bytes([4, flags]) + struct.pack(">H", 600) + utf8(client_id))


def start(firehook, config):
    t0 = time.monotonic()
    p = subprocess.Popen([firehook, "serve", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    for line in p.stdout:
        m = LISTENER.search(line)
        if m:
            return p, int(m.group(1)), time.monotonic() - t0
    raise SystemExit("firehook did not start:\n" + p.stderr.read())


def client(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_some(s, n):
    """Reads until n bytes came (acks we do not parse one by one)."""
    got = 0
    while got < n:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise SystemExit("connection closed")
        got += len(chunk)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--firehook", required=True)
    ap.add_argument("--retained", type=int, default=100_000)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--messages", type=int, default=5, help="queued QoS 1 messages per session")
    ap.add_argument("--payload", type=int, default=100)
    opt = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="firehook-restore-"))
    config = work / "firehook.toml"
    config.write_text(f"""[broker]
shards = 2
sys_interval = 0
state_dir = "{work / 'state'}"
[log]
level = "warn"
[audit]
enabled = false
[limits]
max_connections = 1000000
max_sessions_per_identity = 0
max_connections_per_identity = 0
max_retained_messages = 100000000
max_retained_bytes = 1099511627776
[[listener]]
name = "bench"
address = "127.0.0.1"
port = 0
protocol = "mqtt"
allow_anonymous = true
auth = []
""")
    p, port, first = start(opt.firehook, config)
    payload = b"x" * opt.payload
    t0 = time.monotonic()
    s = client(port)
    s.sendall(connect("filler", True))
    read_some(s, 4)
    batch = bytearray()
    for i in range(opt.retained):  # QoS 1: each acknowledged once on disk
        batch += packet(0x33, utf8(f"retained/{i}") + struct.pack(">H", i % 65535 + 1) + payload)
        if len(batch) > 1 << 16 or i == opt.retained - 1:
            s.sendall(batch)
            batch.clear()
    read_some(s, 4 * opt.retained)
    fill_retained = time.monotonic() - t0
    t0 = time.monotonic()
    for i in range(opt.sessions):
        c = client(port)
        c.sendall(connect(f"device-{i}", False))
        read_some(c, 4)
        c.sendall(packet(0x82, struct.pack(">H", 1) + utf8(f"cmd/{i}") + b"\x01"))
        read_some(c, 5)
        c.close()
    for i in range(opt.sessions):  # queued while they are offline
        for k in range(opt.messages):
            batch += packet(0x32, utf8(f"cmd/{i}") + struct.pack(">H", (i * opt.messages + k) % 65535 + 1) + payload)
        if len(batch) > 1 << 16 or i == opt.sessions - 1:
            s.sendall(batch)
            batch.clear()
    read_some(s, 4 * opt.sessions * opt.messages)
    fill_sessions = time.monotonic() - t0
    s.close()
    p.terminate()
    p.wait(timeout=60)
    size = sum(f.stat().st_size for f in (work / "state" / "store").iterdir())
    p, port, restart = start(opt.firehook, config)
    rss = 0
    for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    p.terminate()
    p.wait(timeout=60)
    print(f"store: {opt.retained} retained messages, {opt.sessions} persistent sessions with "
          f"{opt.messages} queued QoS 1 messages each, {opt.payload}-byte payloads; {size / 1e6:.1f} MB on disk")
    print(f"filling it: retained {fill_retained:.1f} s ({opt.retained / fill_retained:,.0f} msg/s acknowledged "
          f"after the write), sessions and their messages {fill_sessions:.1f} s")
    print(f"start with an empty store: {first:.2f} s; restart with the full store: {restart:.2f} s "
          f"(until the listener accepts); resident memory then {rss / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
