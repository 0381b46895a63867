"""The audit log (docs/audit.md): on by default; every security decision one record of a hash chain
with signed checkpoints; `firehook audit verify` names the first bad record and `firehook audit
query` filters; a restart and rotation keep one chain; and what happens when it cannot be written.

The chain and the signatures are also checked here with code nobody in this project wrote
(hashlib, and the `cryptography` package's Ed25519), so the test does not trust verify alone."""

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conftest import firehook_binary
from pahoclient import V5, unique

GENESIS = "0" * 64
SIGNED = {"file_start", "start", "checkpoint", "file_end", "stop"}


def firehook(*args):
    return subprocess.run([firehook_binary(), *map(str, args)], capture_output=True, text=True, timeout=60)


def audit_dir(broker):
    state = broker.config.get("broker", {}).get("state_dir", "state")
    return (broker.dir / state / "audit") if not state.startswith("/") else (Path(state) / "audit")


def read_chain(directory):
    """Every record of every file, in chain order (by the first record's seq), as (line, dict)."""
    files = sorted(directory.glob("audit*.log"),
                   key=lambda f: json.loads(f.read_text().splitlines()[0])["seq"])
    return [(line, json.loads(line)) for f in files for line in f.read_text().splitlines()]


def check_chain(records, public_hex):
    """seq counts up by one, prev is the SHA-256 of the line before, every signed record's Ed25519
    signature verifies: checked independently of firehook."""
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
    prev = None
    for line, r in records:
        if prev is not None:
            assert r["seq"] == prev[1]["seq"] + 1, (prev[0], line)
            assert r["prev"] == hashlib.sha256(prev[0].encode()).hexdigest(), line
        else:
            assert r["seq"] != 1 or r["prev"] == GENESIS
        if r.get("audit") in SIGNED:
            signed, sig = line.rsplit(',"sig":"', 1)
            key.verify(bytes.fromhex(sig[:-2]), (signed + "}").encode())  # raises when forged
        prev = (line, r)


def denied_connect(broker, client_id):
    """mosquitto_pub with a user the broker does not know: refused with "bad user name or password"."""
    p = subprocess.run(["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv311",
                        "-i", client_id, "-u", "nobody", "-P", "wrong", "-t", "t", "-m", "x"],
                       capture_output=True, text=True, timeout=15)
    assert p.returncode != 0 and "bad user name or password" in (p.stdout + p.stderr).lower(), p


def test_decisions_are_chained_signed_and_verified(start_broker, clients):
    b = start_broker({"audit": {"checkpoint_interval": 1}})
    intruder = unique("intruder")
    denied_connect(b, intruder)
    legit = clients(b, V5, client_id=unique("legit"))
    legit.subscribe("plant/#", 1)
    legit.disconnect()
    b.stop()

    records = read_chain(audit_dir(b))
    public = (audit_dir(b) / "audit.key.pub").read_text().strip()
    check_chain(records, public)
    assert records[0][1]["audit"] == "file_start" and records[0][1]["key"] == public
    assert records[-1][1]["audit"] == "stop", "a clean shutdown ends the chain with a signed stop record"
    events = [r for _, r in records if "event" in r]
    denied = [r for r in events if r["event"] == "auth_denied" and r.get("client_id") == intruder]
    assert denied and denied[0]["username"] == "nobody" and denied[0]["peer"] == "127.0.0.1" \
        and denied[0]["reason_code"] == "0x86", denied
    kinds = {r["event"] for r in events}
    assert {"connection_accepted", "auth_allowed", "subscribe_granted", "client_disconnected"} <= kinds, kinds

    r = firehook("audit", "verify", "-c", b.config_path)
    assert r.returncode == 0 and "intact" in r.stdout and "audit.key.pub" in r.stdout, r
    q = firehook("audit", "query", "-c", b.config_path, "--client-id", intruder)
    assert q.returncode == 0, q
    found = [json.loads(line) for line in q.stdout.splitlines()]
    assert found and all(x["client_id"] == intruder for x in found) and found[0]["event"] == "auth_denied", q.stdout
    q = firehook("audit", "query", "-c", b.config_path, "--event", "auth_denied", "--since", "2000-01-01")
    assert intruder in q.stdout


def test_an_edit_or_a_deletion_is_named_by_verify(start_broker):
    b = start_broker()
    intruder = unique("intruder")
    denied_connect(b, intruder)
    b.stop()
    log = audit_dir(b) / "audit.log"
    original = log.read_text().splitlines()
    at = next(i for i, line in enumerate(original) if intruder in line)

    edited = list(original)
    edited[at] = edited[at].replace(intruder, "someone-else")
    log.write_text("\n".join(edited) + "\n")
    r = firehook("audit", "verify", "-c", b.config_path)
    assert r.returncode == 1 and f"audit.log:{at + 2}: prev is not the hash" in r.stderr, r

    log.write_text("\n".join(original[:at] + original[at + 1:]) + "\n")
    r = firehook("audit", "verify", "-c", b.config_path)
    assert r.returncode == 1 and f"audit.log:{at + 1}: seq" in r.stderr, r

    log.write_text("\n".join(original) + "\n")
    assert firehook("audit", "verify", "-c", b.config_path).returncode == 0


def test_a_restart_and_rotation_keep_one_chain(start_broker, tmp_path):
    state = tmp_path / "shared-state"
    settings = {"broker": {"state_dir": str(state)}, "audit": {"max_file_bytes": 4096, "keep_files": 100}}
    first = start_broker(settings)
    for i in range(12):
        denied_connect(first, f"rot-a-{i}")
    first.stop()
    second = start_broker(settings)
    for i in range(12):
        denied_connect(second, f"rot-b-{i}")
    second.stop()

    files = sorted((state / "audit").glob("audit*.log"))
    assert len(files) >= 3, f"expected rotated files, got {files}"
    records = read_chain(state / "audit")
    check_chain(records, (state / "audit" / "audit.key.pub").read_text().strip())
    kinds = [r.get("audit") for _, r in records if "audit" in r]
    assert kinds.count("stop") == 2 and "start" in kinds and "file_end" in kinds, kinds
    clients_seen = {r.get("client_id") for _, r in records}
    assert {"rot-a-0", "rot-a-11", "rot-b-0", "rot-b-11"} <= clients_seen
    r = firehook("audit", "verify", "-c", second.config_path)
    assert r.returncode == 0 and f"in {len(files)} file(s)" in r.stdout, r


def test_unwritable_audit_log_refuses_connections_when_asked(start_broker, raw, version):
    b = start_broker({"audit": {"file": "/dev/full", "on_failure": "refuse"}})
    assert "cannot be written" in b.stderr_text()
    c = raw(b, version)
    c.connect(client_id=unique("refused"), expect_rc=0x88 if version == V5 else 3)
    e = b.wait_for_event("auth_denied", decision="deny")
    assert "audit log cannot be written" in e["reason"], e


def test_unwritable_audit_log_keeps_serving_by_default(start_broker, clients):
    b = start_broker({"audit": {"file": "/dev/full"}})
    assert "cannot be written" in b.stderr_text()
    c = clients(b, V5, client_id=unique("served"))
    c.roundtrip()
