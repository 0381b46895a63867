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
