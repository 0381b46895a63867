"""The `password` authentication method end to end: users made with `firehook user` (and imported
from a Mosquitto password file written by Debian's `mosquitto_passwd` at test time), a broker whose
listener chain is ["password"] with anonymous access off, and paho-mqtt, mosquitto_pub and a raw
socket client connecting with right, wrong and missing credentials.

A refused password gets CONNACK 0x86 (5.0) / 0x04 (3.1.1) and the connection is closed, whether
the user is unknown or the password wrong; no credentials at all gets 0x87 / 0x05.
"""

import subprocess
import time

import pytest

from conftest import firehook_binary
from pahoclient import V5, V311, unique
from rawclient import CONNACK, connect_packet

BAD_CREDENTIALS = {V5: 0x86, V311: 0x04}
NOT_AUTHORIZED = {V5: 0x87, V311: 0x05}
VERSION_FLAG = {V5: "mqttv5", V311: "mqttv311"}



def user_cmd(db, *args, password=None, check=True):
    """Runs `firehook user --db DB ARGS...`; a password goes in on stdin (--password-stdin)."""
    cmd = [firehook_binary(), "user", "--db", str(db), *map(str, args)]
    if password is not None:
        cmd.append("--password-stdin")
    r = subprocess.run(cmd, input=None if password is None else password + "\n", capture_output=True, text=True,
                       timeout=60)
    if check:
        assert r.returncode == 0, f"{cmd} exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def password_listener(db):
    return {
        "listener": [{
            "name": "default", "address": "127.0.0.1", "port": 0, "protocol": "mqtt",
            "allow_anonymous": False, "auth": ["password"],
        }],
        "auth.password": {"database": str(db)},
    }


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "users" / "firehook.db"
    user_cmd(path, "add", "dev1", "--role", "sensor", "--attr", "building=b1", password="right horse")
    return path


@pytest.fixture
def pw_broker(start_broker, db):
    return start_broker(password_listener(db))


def connack_of(broker, version, **kw):
    """Sends one CONNECT on a raw socket; returns (CONNACK reason, closed afterwards)."""
    from rawclient import RawClient

    r = RawClient(broker.host, broker.port, version)
    try:
        r.send(connect_packet(version, unique(), **kw))
        got = r.wait_closed()
        assert got and got[0].type == CONNACK, f"expected a CONNACK before the close, got {got!r}"
        assert len(got) == 1, f"nothing may follow a refusing CONNACK: {got!r}"
        return got[0].reason
    finally:
        r.close()


def paho_login(clients, broker, version, user, password, expect_rc):
    c = clients(broker, version, connect=False)
    c.c.username_pw_set(user, password)
    c.connect(expect_rc=expect_rc)
    return c


def test_right_password_connects_and_exchanges_messages(pw_broker, clients, version):
    c = paho_login(clients, pw_broker, version, "dev1", "right horse", 0)
    c.roundtrip()


def test_wrong_password_is_refused_with_bad_credentials(pw_broker, version):
    assert connack_of(pw_broker, version, username="dev1", password=b"wrong horse") == BAD_CREDENTIALS[version]


def test_unknown_user_is_refused_with_the_same_code(pw_broker, version):
    assert connack_of(pw_broker, version, username="nobody", password=b"right horse") == BAD_CREDENTIALS[version]


def test_user_name_without_password_is_refused(pw_broker, version):
    assert connack_of(pw_broker, version, username="dev1") == BAD_CREDENTIALS[version]


def test_no_credentials_and_no_anonymous_access_is_not_authorized(pw_broker, version):
    assert connack_of(pw_broker, version) == NOT_AUTHORIZED[version]


def test_paho_sees_the_refusal(pw_broker, clients, version):
    c = paho_login(clients, pw_broker, version, "dev1", "nope", None)
    assert c.connack[1] == BAD_CREDENTIALS[version], f"CONNACK {c.connack[1]:#04x}"


def test_refusals_are_logged_with_method_and_reason(pw_broker):
    connack_of(pw_broker, V5, username="nobody", password=b"Zq9-never-logged")
    connack_of(pw_broker, V5, username="dev1", password=b"Zq9-never-logged")
    for username, why in (("nobody", "unknown user"), ("dev1", "wrong password")):
        e = pw_broker.wait_for_event("auth_denied", username=username, timeout=5)
        assert (e["method"], e["reason"], e["reason_code"]) == ("password", why, "0x86"), e
    assert "Zq9-never-logged" not in pw_broker.stderr_text(), "a password must never reach the log"


def test_unknown_user_and_wrong_password_take_about_the_same_time(pw_broker):
    def best_of(user):
        times = []
        for _ in range(3):
            start = time.monotonic()
            connack_of(pw_broker, V5, username=user, password=b"not it")
            times.append(time.monotonic() - start)
        return min(times)

    wrong, unknown = best_of("dev1"), best_of("nobody")
    # Argon2id takes tens of milliseconds; skipping it for unknown users would be far outside 3x.
    assert unknown * 3 > wrong and wrong * 3 > unknown, f"wrong password {wrong:.3f}s, unknown user {unknown:.3f}s"


def test_users_added_changed_and_removed_while_the_broker_runs(pw_broker, db, clients):
    user_cmd(db, "add", "dev2", password="second")
    paho_login(clients, pw_broker, V5, "dev2", "second", 0).roundtrip()
    user_cmd(db, "passwd", "dev2", password="third")
    assert connack_of(pw_broker, V5, username="dev2", password=b"second") == 0x86
    paho_login(clients, pw_broker, V5, "dev2", "third", 0)
    user_cmd(db, "remove", "dev2")
    assert connack_of(pw_broker, V5, username="dev2", password=b"third") == 0x86


@pytest.mark.parametrize("level", [V311, V5], ids=["3.1.1", "5.0"])
def test_mosquitto_pub_with_right_and_wrong_password(pw_broker, level):
    def pub(password):
        return subprocess.run(["mosquitto_pub", "-h", pw_broker.host, "-p", str(pw_broker.port), "-V",
                               VERSION_FLAG[level], "-i", unique("mp"), "-u", "dev1", "-P", password, "-t", "t/pw",
                               "-m", "hello", "-q", "1"], capture_output=True, text=True, timeout=20)

    ok = pub("right horse")
    assert ok.returncode == 0, f"mosquitto_pub failed: {ok.stderr}"
    bad = pub("wrong horse")
    assert bad.returncode != 0, "mosquitto_pub with a wrong password must fail"
    assert "bad user name or password" in bad.stderr.lower(), bad.stderr


def test_imported_mosquitto_password_file(start_broker, tmp_path, clients, version):
    pwfile = tmp_path / "mosquitto.passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pwfile), "m7", "pbkdf2 pass"], check=True)
    subprocess.run(["mosquitto_passwd", "-H", "sha512", "-b", str(pwfile), "m6", "sha pass"], check=True)
    db = tmp_path / "imported.db"
    r = user_cmd(db, "import-mosquitto", pwfile, "--role", "migrated")
    assert "imported 2 user(s)" in r.stdout
    listed = user_cmd(db, "list").stdout
    assert "mosquitto-pbkdf2-sha512" in listed and "mosquitto-sha512" in listed, listed

    b = start_broker(password_listener(db))
    assert connack_of(b, version, username="m7", password=b"wrong") == BAD_CREDENTIALS[version]
    paho_login(clients, b, version, "m7", "pbkdf2 pass", 0).roundtrip()
    paho_login(clients, b, version, "m6", "sha pass", 0).roundtrip()

    # Both were re-hashed with Argon2id at their first login, and still work.
    listed = user_cmd(db, "list").stdout
    rows = {line.split()[0]: line.split() for line in listed.splitlines()[1:]}
    assert rows["m7"][3] == "argon2id" and rows["m6"][3] == "argon2id", listed
    paho_login(clients, b, version, "m7", "pbkdf2 pass", 0)


def test_import_reports_bad_lines_and_imports_nothing(tmp_path):
    pwfile = tmp_path / "mosquitto.passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pwfile), "good", "pw"], check=True)
    with open(pwfile, "a") as f:
        f.write("plain:texthere\nno-colon-line\n")
    db = tmp_path / "x.db"
    r = user_cmd(db, "import-mosquitto", pwfile, check=False)
    assert r.returncode == 1
    assert f"{pwfile}:2:" in r.stderr and f"{pwfile}:3:" in r.stderr, r.stderr
    assert "texthere" not in r.stderr, "a plain-text password must not be echoed"
    assert "nothing imported" in r.stderr
    assert "good" not in user_cmd(db, "list").stdout


def test_user_list_shows_roles_attributes_and_kind_never_the_hash(db):
    user_cmd(db, "add", "amy", "--role", "admin", "--role", "ops", password="pw-amy")
    out = user_cmd(db, "list").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ROLES", "ATTRIBUTES", "HASH", "UPDATED"], out
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["amy"][:4] == ["amy", "admin,ops", "-", "argon2id"], out
    assert rows["dev1"][:4] == ["dev1", "sensor", "building=b1", "argon2id"], out
    assert "$argon2id$" not in out and "pw-amy" not in out


def test_user_command_errors_exit_1_with_a_message(db, tmp_path):
    r = user_cmd(db, "add", "dev1", password="again", check=False)
    assert r.returncode == 1 and "exists" in r.stderr
    r = user_cmd(db, "remove", "ghost", check=False)
    assert r.returncode == 1 and "no user" in r.stderr
    r = user_cmd(tmp_path / "missing.db", "list", check=False)
    assert r.returncode == 1 and "no credential database" in r.stderr
    assert not (tmp_path / "missing.db").exists(), "list must not create a database"
    r = user_cmd(db, "add", "dev9", "--attr", "noequals", password="pw", check=False)
    assert r.returncode == 1 and "KEY=VALUE" in r.stderr
    # Without --password-stdin and without a terminal there is no way to ask: an error, not a hang.
    r = subprocess.run([firehook_binary(), "user", "--db", str(db), "add", "dev9"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "--password-stdin" in r.stderr


def test_user_command_finds_the_database_through_the_config(tmp_path):
    state = tmp_path / "state"
    cfg = tmp_path / "firehook.toml"
    cfg.write_text(f'[broker]\nstate_dir = "{state}"\n')
    r = subprocess.run([firehook_binary(), "user", "add", "cfguser", "-c", str(cfg), "--password-stdin"],
                       input="pw\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (state / "firehook.db").exists()
    assert (state / "firehook.db").stat().st_mode & 0o777 == 0o600
