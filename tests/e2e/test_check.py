"""`firehook check -c FILE`: a good configuration passes, a bad one is reported with file, line and
key and a non-zero exit; `serve` refuses the same file before opening any listener."""

import subprocess

import pytest

from conftest import START_TIMEOUT, firehook_binary, write_config


def run(*args):
    return subprocess.run([firehook_binary(), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=START_TIMEOUT)


def test_check_accepts_the_default_test_configuration(tmp_path):
    path, _ = write_config(tmp_path)
    r = run("check", "-c", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert str(path) in r.stdout + r.stderr


@pytest.mark.parametrize("table,key,value", [
    ("limits", "max_inflight", 0),
    ("limits", "max_qos", 3),
    ("limits", "connect_timeout", -1),
    ("broker", "shards", "many"),
    ("limits", "max_packet_sizes", 1024),  # a misspelt key is an error, not ignored
])
def test_check_names_file_line_and_key(tmp_path, table, key, value):
    path, lines = write_config(tmp_path, {table: {key: value}})
    r = run("check", "-c", str(path))
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"check accepted {table}.{key} = {value!r}:\n{out}"
    where = f"{path}:{lines[f'{table}.{key}']}:"
    assert where in out, f"the report should start with {where!r}:\n{out}"
    assert f"{table}.{key}" in out, out
    # serve refuses it the same way, without listening
    s = run("serve", "-c", str(path))
    assert s.returncode != 0
    assert where in s.stdout + s.stderr
    assert "listener" not in s.stdout, s.stdout


def test_check_reports_toml_syntax_error_with_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[broker]\nshards = 2\n[limits\nmax_inflight = 5\n")
    r = run("check", "-c", str(path))
    assert r.returncode != 0
    assert f"{path}:3:" in r.stdout + r.stderr, r.stdout + r.stderr


def test_check_of_a_missing_file_fails(tmp_path):
    r = run("check", "-c", str(tmp_path / "nope.toml"))
    assert r.returncode != 0
    assert "nope.toml" in r.stdout + r.stderr


# ----------------------------------------------------------------------------------------------
# The files a configuration names are opened, as serve would


def self_signed(directory):
    key, crt = directory / "server.key", directory / "server.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    return crt, key


def tls_listener(crt, key):
    return {"listener": [{"name": "secure", "address": "127.0.0.1", "port": 0, "protocol": "mqtts",
                          "allow_anonymous": True, "tls": {"cert": str(crt), "key": str(key)}}]}


def test_check_opens_tls_files(tmp_path):
    crt, key = self_signed(tmp_path)
    path, _ = write_config(tmp_path, tls_listener(crt, key))
    r = run("check", "-c", str(path))
    assert r.returncode == 0, r.stdout + r.stderr

    path, lines = write_config(tmp_path, tls_listener(tmp_path / "missing.crt", key))
    r = run("check", "-c", str(path))
    assert r.returncode == 1 and "ok" not in r.stdout, r
    assert f"{path}:{lines['listener[0].tls.cert']}:" in r.stderr and "listener[0].tls.cert: " in r.stderr, r.stderr
    assert "missing.crt" in r.stderr, r.stderr

    key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    path, lines = write_config(tmp_path, tls_listener(crt, key))
    r = run("check", "-c", str(path))
    assert r.returncode == 1 and "listener[0].tls.key: " in r.stderr, r.stderr


def test_check_opens_token_keys_audit_key_and_state_dir(tmp_path):
    path, lines = write_config(tmp_path, {"auth": {"jwt": {"jwks": str(tmp_path / "gone.jwks")}}})
    r = run("check", "-c", str(path))
    assert r.returncode == 1 and f"{path}:{lines['auth.jwt.jwks']}:" in r.stderr and "gone.jwks" in r.stderr, r

    bad_key = tmp_path / "audit.key"
    bad_key.write_text("not a key\n")
    path, lines = write_config(tmp_path, {"audit": {"key_file": str(bad_key)}})
    r = run("check", "-c", str(path))
    assert r.returncode == 1 and f"{path}:{lines['audit.key_file']}:" in r.stderr, r.stderr

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path, lines = write_config(tmp_path, {"broker": {"state_dir": str(blocker)}})
    r = run("check", "-c", str(path))
    assert r.returncode == 1 and "broker.state_dir: " in r.stderr and "is not a folder" in r.stderr, r.stderr
    assert not (blocker.parent / "audit").exists(), "check must not create anything"
