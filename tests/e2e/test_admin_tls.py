"""The admin endpoint over TLS ([admin.tls], docs/admin.md), driven by curl with certificates of
the session's throw-away PKI (pki.py): HTTPS with a bearer token; plain HTTP to the HTTPS port
fails; a client certificate from client_ca whose subject admin.client_subjects lists is let in
without a token, another subject gets 403, a certificate of another CA fails the handshake; each
request an admin_request event saying which credential it came with; the certificate replaced on
disk is served without a restart; a non-loopback address without TLS stops start-up at the key;
and the posture report's admin finding."""

import json
import re
import ssl
import subprocess

import pytest

from conftest import firehook_binary, write_config
from pki import cert_serial, pki  # noqa: F401  (pki is a fixture)

# /OU=devices/CN=device-1 in RFC 2253 form: the most specific part first.
DEVICE_1 = "CN=device-1,OU=devices"


def curl(broker, path, pki, token=None, client=None, scheme="https"):
    """(curl's exit code, HTTP status or 0, body) of one request to the admin listener."""
    host, port = broker.listeners["admin"]
    cmd = ["curl", "-s", "-S", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10", "--cacert", str(pki.ca),
           f"{scheme}://{host}:{port}{path}"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    if client:
        cmd += ["--cert", str(client.cert), "--key", str(client.key)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    body, _, status = p.stdout.rpartition("\n")
    return p.returncode, int(status or 0), body


def admin_settings(tmp_path, pki, **admin):
    tls = {"cert": str(pki.server.cert), "key": str(pki.server.key)}
    tls.update(admin.pop("tls", {}))
    return {"broker": {"state_dir": str(tmp_path / "admin-state")},
            "admin": {"port": 0, **admin, "tls": tls}}


def with_token(start_broker, tmp_path, settings, name="scraper"):
    """A broker started with `settings`, and a token made before it starts (in its tokens file)."""
    cfg, _ = write_config(tmp_path, settings, name="for-token.toml")
    p = subprocess.run([firehook_binary(), "admin", "-c", str(cfg), "token", "add", name],
                       capture_output=True, text=True, timeout=15)
    assert p.returncode == 0, p
    b = start_broker(settings)
    b.token = p.stdout.strip()
    return b


def test_https_with_a_token_and_nothing_in_plain_http(start_broker, tmp_path, pki):
    b = with_token(start_broker, tmp_path, admin_settings(tmp_path, pki))
    assert any('listener "admin" https on 127.0.0.1:' in line for line in b.stdout_lines), b.stdout_lines
    since = len(b.stderr_text())
    code, status, body = curl(b, "/metrics", pki, token=b.token)
    assert (code, status) == (0, 200), body
    assert 'firehook_certificate_expiry_timestamp_seconds{listener="admin",kind="server"' in body
    e = b.wait_for_event("admin_request", since, identity="scraper")
    assert (e["method"], e["subject"], e["decision"], e["reason"]) == ("admin-token", "GET /metrics", "allow", "200"), e

    code, status, body = curl(b, "/healthz", pki)
    assert status == 401 and json.loads(body) == {"error": "no bearer token"}, (code, status, body)

    since = len(b.stderr_text())
    code, status, body = curl(b, "/healthz", pki, token=b.token, scheme="http")
    assert code != 0 and status == 0, (code, status, body)
    e = b.wait_for_event("admin_request", since, subject="(TLS handshake)")
    assert e["decision"] == "deny" and e["reason"].startswith("TLS handshake failed"), e
    assert curl(b, "/healthz", pki, token=b.token)[1] == 200  # and the endpoint goes on


def test_client_certificates_of_the_listed_subjects_only(start_broker, tmp_path, pki):
    b = with_token(start_broker, tmp_path, admin_settings(tmp_path, pki, client_subjects=[DEVICE_1],
                                                          tls={"client_ca": str(pki.ca)}))
    since = len(b.stderr_text())
    code, status, body = curl(b, "/metrics", pki, client=pki.clients["device-1"])
    assert (code, status) == (0, 200) and "firehook_clients_connected" in body, (code, status, body)
    e = b.wait_for_event("admin_request", since, identity=DEVICE_1)
    assert (e["method"], e["decision"], e["reason"]) == ("admin-certificate", "allow", "200"), e

    # Signed by the same CA, but not listed: 403 with a JSON body, and the event names it.
    since = len(b.stderr_text())
    code, status, body = curl(b, "/metrics", pki, client=pki.clients["device-2"])
    assert status == 403 and "admin.client_subjects" in json.loads(body)["error"], (status, body)
    e = b.wait_for_event("admin_request", since, identity="CN=device-2,OU=devices")
    assert (e["method"], e["decision"], e["reason"][:3]) == ("admin-certificate", "deny", "403"), e

    # Another CA's certificate, with the very subject that is listed: refused in the handshake.
    since = len(b.stderr_text())
    code, status, body = curl(b, "/metrics", pki, client=pki.stranger)
    assert code != 0 and status == 0, (code, status, body)
    e = b.wait_for_event("admin_request", since, subject="(TLS handshake)")
    assert e["decision"] == "deny" and "certificate verify failed" in e["reason"], e
    # An expired certificate of the right CA likewise.
    assert curl(b, "/metrics", pki, client=pki.clients["expired"])[1] == 0

    # Without a certificate nor a token: 401. Tokens keep working, with or without a certificate.
    assert curl(b, "/metrics", pki)[1] == 401
    assert curl(b, "/healthz", pki, token=b.token)[1] == 200
    assert curl(b, "/healthz", pki, token=b.token, client=pki.clients["device-2"])[1] == 200
    # A wrong token is not rescued by a listed certificate.
    assert curl(b, "/healthz", pki, token="fha_guessed", client=pki.clients["device-1"])[1] == 401


def test_a_replaced_certificate_is_served_without_a_restart(start_broker, tmp_path, pki):
    cert, key = tmp_path / "admin.crt", tmp_path / "admin.key"
    cert.write_bytes(pki.server.cert.read_bytes())
    key.write_bytes(pki.server.key.read_bytes())
    b = with_token(start_broker, tmp_path, admin_settings(tmp_path, pki, tls={"cert": str(cert), "key": str(key)}))
    host, port = b.listeners["admin"]
    assert cert_serial(pem=ssl.get_server_certificate((host, port))) == pki.server.serial

    fresh = pki.issue_server()
    since = len(b.stderr_text())
    # Key first, then certificate, each by a rename, as a rotation should: the pair is read together.
    for src, dst in ((fresh.key, key), (fresh.cert, cert)):
        tmp = dst.with_name(dst.name + ".new")
        tmp.write_bytes(src.read_bytes())
        tmp.rename(dst)
    b.wait_for_event("reload", since, decision="allow", timeout=10,
                     predicate=lambda e: "listener admin" in e["subject"])
    assert cert_serial(pem=ssl.get_server_certificate((host, port))) == fresh.serial
    assert curl(b, "/healthz", pki, token=b.token)[1] == 200


@pytest.mark.parametrize("address", ["0.0.0.0", "::"])
def test_a_non_loopback_address_without_tls_stops_start_up_at_the_key(tmp_path, address):
    path, lines = write_config(tmp_path, {"broker": {"state_dir": str(tmp_path / "st")},
                                          "admin": {"port": 0, "address": address}})
    for command in ("serve", "check"):
        p = subprocess.run([firehook_binary(), command, "-c", str(path)], capture_output=True, text=True, timeout=30)
        assert p.returncode == 1, (command, p)
        assert f"{path}:{lines['admin.address']}:" in p.stderr and "admin.address: " in p.stderr, (command, p.stderr)
        assert "needs [admin.tls]" in p.stderr, p.stderr


def test_check_opens_the_admin_tls_files(tmp_path, pki):
    path, lines = write_config(tmp_path, {"broker": {"state_dir": str(tmp_path / "st")},
                                          "admin": {"port": 0, "tls": {"cert": str(pki.server.cert),
                                                                       "key": str(tmp_path / "missing.key")}}})
    p = subprocess.run([firehook_binary(), "check", "-c", str(path)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and f"{path}:{lines['admin.tls.key']}:" in p.stderr, p
    assert "admin.tls.key: " in p.stderr and "missing.key" in p.stderr, p.stderr


def test_posture_reports_plain_http_only(tmp_path, pki):
    def report(settings, name):
        path, lines = write_config(tmp_path, settings, name=name)
        p = subprocess.run([firehook_binary(), "audit", "-c", str(path)], capture_output=True, text=True, timeout=60)
        return p.stdout, path, lines

    def admin_findings(out):  # at the key admin or one of admin.*
        return [line for line in out.splitlines() if line.split(" ")[0] in ("LOW", "MEDIUM", "HIGH")
                and re.search(r": admin[.:]", line)]

    out, path, _ = report({"broker": {"state_dir": str(tmp_path / "st")}, "admin": {"port": 0}}, "plain.toml")
    found = admin_findings(out)
    assert len(found) == 1 and found[0].startswith(f"LOW    {path}:") and ": admin: " in found[0], out
    assert "plain HTTP" in found[0], out
    out, _, _ = report(admin_settings(tmp_path, pki), "tls.toml")
    assert admin_findings(out) == [], out
