"""Helpers for test_topics.py: a broker whose configuration names a topics file, and clients that
reach it over TLS with the identities the topics file gives rights to.

The broker has three TLS listeners (server certificate from the session PKI, pki.py):

    certs   auth = ["certificate"], client certificate required, client id = CN (must_match):
            thermostats by certificate (OU=thermostats gives the role)
    users   auth = ["password"]: users made with `firehook user add --role R --attr K=V`, so that
            `where = { building = "attr.building" }` binds to what the credential store holds
    tokens  auth = ["jwt"]: tokens signed by a key made at test time (RS256, PyJWT), whose claims
            `kind`, `building`, `room`, `service` and `roles` the topics file reads

conftest.py writes tables only, and `topics = "..."` must be a top-level key above the first
table: `start_with_topics` adds it in front of the generated configuration, and writes the topics
file beside it (the path in the configuration is relative, as a user would write it).
"""

import os
import ssl
import subprocess
import time
from pathlib import Path

import jwt
import pytest

import conftest
from conftest import firehook_binary
from pahoclient import V5, unique
from rawclient import TlsRawClient

ISSUER = "https://issuer.test"
AUDIENCE = "firehook"
PASSWORD = "correct horse battery"
RELOAD_TIMEOUT = 10.0  # SIGHUP reloads at once; the file watch looks every second

# ----------------------------------------------------------------------------------------------
# The topics file of the tests: examples/topics.toml cut down, plus grants bound to token claims.


def topics_toml(controller_reads_temperature=True, controller_reads_setpoint=False, thermostat_status=True):
    """The topics file. The flags change one grant each, for the reload tests."""
    status_publishers = '"thermostat"' if thermostat_status else '"hvac-controller"'
    controller_read = ('{ role = "hvac-controller", where = { building = "claim.building" } }, '
                       if controller_reads_temperature else "")
    setpoint_read = ('{ role = "hvac-controller", where = { building = "claim.building" } }, '
                     if controller_reads_setpoint else "")
    return f"""\
# The topics of the end-to-end tests: a small building fleet, modelled on examples/topics.toml.

[roles.thermostat]
description = "A room thermostat"
from = ["cert.ou = thermostats", "claim.kind = thermostat"]

[roles.hvac-controller]
description = "The heating and cooling controller of one building"
from = ["claim.kind = hvac-controller"]

[roles.dashboard]
description = "The operations dashboard"
service = true

[roles.key-service]
description = "The back-end service that rotates device keys"
from = ["claim.service = key-rotation"]
service = true

[[topic]]
pattern = "buildings/{{building}}/rooms/{{room}}/temperature"
description = "Room temperature"
payload = {{ format = "JSON", units = "°C", example = '{{"t": 21.5}}' }}
max_qos = 1
retain = true
publish = [
  {{ role = "thermostat", where = {{ building = "attr.building", room = "attr.room" }} }},
  {{ role = "thermostat", where = {{ building = "claim.building", room = "claim.room" }} }},
]
subscribe = [{controller_read}"dashboard"]

[[topic]]
pattern = "buildings/{{building}}/rooms/{{room}}/setpoint"
description = "The temperature the room should have"
max_qos = 1
retain = true
publish = [{{ role = "hvac-controller", where = {{ building = "claim.building" }} }}, "dashboard"]
subscribe = [{setpoint_read}"dashboard"]

[[topic]]
pattern = "devices/{{client_id}}/status"
description = "Online or offline"
max_qos = 1
retain = true
publish = [{status_publishers}]
subscribe = ["dashboard"]

[[topic]]
pattern = "lobby/announcements"
description = "Messages for visitors"
max_qos = 0
publish = ["dashboard"]
subscribe = ["dashboard"]

[[topic]]
pattern = "#"
description = "Everything, for the dashboard (internal/ excepted, below)"
subscribe = ["dashboard"]

[[topic]]
pattern = "internal/keys/rotation"
description = "Key rotation notices between back-end services"
publish = ["key-service"]
subscribe = ["key-service"]

[[deny]]
pattern = "internal/#"
roles = ["dashboard"]
description = "Back-end traffic: the dashboard's '#' must not reach it"
"""


def replace_file(path, text):
    """Replaces `path` at once (write beside it, rename), as a deployment tool would."""
    path = Path(path)
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# Identities


def issue_client(pki, subject, stem):
    """A client certificate from the session CA (OU and CN in `subject`, e.g. "/OU=x/CN=y")."""
    return pki.ca_authority.issue(subject, "client_ext", pki.dir / "topics-clients", stem)


def make_jwt_key(directory):
    """An RSA key pair made with the openssl CLI; returns (private PEM bytes, public key path)."""
    directory = Path(directory)
    key, pub = directory / "issuer.key", directory / "issuer.pem"
    for args in (["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
                 ["pkey", "-in", key, "-pubout", "-out", pub]):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)
    return key.read_bytes(), pub


def user_add(db, name, roles=(), attrs=None):
    """`firehook user --db DB add NAME --role R... --attr K=V... --password-stdin` (PASSWORD)."""
    cmd = [firehook_binary(), "user", "--db", str(db), "add", name, "--password-stdin"]
    for r in roles:
        cmd += ["--role", r]
    for k, v in (attrs or {}).items():
        cmd += ["--attr", f"{k}={v}"]
    r = subprocess.run(cmd, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}\n{r.stdout}{r.stderr}"


# ----------------------------------------------------------------------------------------------
# The broker


def listeners(pki):
    server = {"cert": str(pki.server.cert), "key": str(pki.server.key), "min_version": "1.2"}

    def listener(name, auth, **tls):
        return {"name": name, "address": "127.0.0.1", "port": 0, "protocol": "mqtts", "auth": auth,
                "allow_anonymous": False, "tls": dict(server, **tls)}

    return [
        listener("certs", ["certificate"], ca=str(pki.ca), client_certificates="required"),
        listener("users", ["password"], client_certificates="none"),
        listener("tokens", ["jwt"], client_certificates="none"),
    ]


def fleet_config(pki, db, jwt_public_key, overrides=None):
    return conftest.merge({
        "listener": listeners(pki),
        "auth": {
            "certificate": {"identity": "cn", "client_id": "must_match"},
            "password": {"database": str(db)},
            "jwt": {"public_keys": [str(jwt_public_key)], "issuer": ISSUER, "audience": AUDIENCE, "leeway": 0,
                    "required_claims": ["exp"]},
        },
    }, overrides)


def start_with_topics(start_broker, topics_text, overrides=None, topics_name="topics.toml"):
    """start_broker(overrides) with `topics = "<topics_name>"` at the top of the configuration and
    the topics file written beside it. Returns the Broker, with `topics_path` set."""
    original = conftest.write_config
    prefix = f'topics = "{topics_name}"\n\n'

    def write_config(directory, overrides=None, name="firehook.toml"):
        (Path(directory) / topics_name).write_text(topics_text)
        path, lines = original(directory, overrides, name)
        path.write_text(prefix + path.read_text())
        return path, {k: v + prefix.count("\n") for k, v in lines.items()}

    conftest.write_config = write_config
    try:
        b = start_broker(overrides)
    finally:
        conftest.write_config = original
    b.topics_path = b.config_path.parent / topics_name
    return b


# ----------------------------------------------------------------------------------------------
# Clients over TLS


class Fleet:
    """The broker of a test and factories for its clients (paho and raw), each over TLS on the
    listener its identity needs. Raw clients are closed by `close()`; paho ones by `clients`."""

    def __init__(self, broker, pki, jwt_key, clients):
        self.broker = broker
        self.pki = pki
        self.jwt_key = jwt_key
        self.clients = clients
        self.raws = []

    # -- credentials

    def token(self, sub, **claims):
        now = int(time.time())
        payload = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
        payload.update(claims)
        return jwt.encode(payload, self.jwt_key, algorithm="RS256")

    def _context(self, identity=None):
        ctx = ssl.create_default_context(cafile=str(self.pki.ca))
        if identity is not None:
            ctx.load_cert_chain(str(identity.cert), str(identity.key))
        return ctx

    # -- paho

    def _paho(self, listener, version, client_id, identity=None, username=None, password=None, connect=True,
              expect_rc=0):
        c = self.clients(self.broker, version, connect=False, client_id=client_id, listener=listener)
        if identity is not None:
            c.c.tls_set(ca_certs=str(self.pki.ca), certfile=str(identity.cert), keyfile=str(identity.key))
        else:
            c.c.tls_set(ca_certs=str(self.pki.ca))
        if username is not None:
            c.c.username_pw_set(username, password)
        if connect:
            c.connect(expect_rc=expect_rc)
        return c

    def user(self, name, version=V5, **kw):
        """A paho client logged in as credential-store user `name` (listener "users")."""
        return self._paho("users", version, unique(name[:8]), username=name, password=PASSWORD, **kw)

    def with_token(self, sub, version=V5, client_id=None, **claims):
        """A paho client with a token for `sub` carrying `claims` (listener "tokens")."""
        return self._paho("tokens", version, client_id or unique(sub[:8]), username=sub,
                          password=self.token(sub, **claims))

    def with_cert(self, identity, version=V5):
        """A paho client with a client certificate; its client id is the CN (listener "certs")."""
        return self._paho("certs", version, identity.cn, identity=identity)

    def dashboard(self, version=V5):
        return self.with_token("dashboard", version, roles=["dashboard"])

    def controller(self, building, version=V5):
        return self.with_token(f"ctl-{building}", version, kind="hvac-controller", building=building)

    # -- raw (exact reason codes)

    def _raw(self, listener, version, identity=None):
        host, port = self.broker.listeners[listener]
        r = TlsRawClient(host, port, self._context(identity), version, server_hostname="localhost")
        self.raws.append(r)
        return r

    def raw_user(self, name, version=V5):
        r = self._raw("users", version)
        r.connect(client_id=unique(name[:8]), username=name, password=PASSWORD.encode(), expect_rc=0)
        return r

    def raw_token(self, sub, version=V5, **claims):
        r = self._raw("tokens", version)
        r.connect(client_id=unique(sub[:8]), username=sub, password=self.token(sub, **claims).encode(), expect_rc=0)
        return r

    def raw_cert(self, identity, version=V5):
        r = self._raw("certs", version, identity)
        r.connect(client_id=identity.cn, expect_rc=0)
        return r

    def close(self):
        for r in self.raws:
            r.close()


# ----------------------------------------------------------------------------------------------
# Fixtures (import them into a test module to use them there)


@pytest.fixture(scope="module")
def jwt_key(tmp_path_factory):
    return make_jwt_key(tmp_path_factory.mktemp("topics-jwt"))


@pytest.fixture(scope="module")
def certs(pki):
    """Client certificates: two thermostats (OU=thermostats) and a device without a topics role."""
    return {
        "t-cert-1": issue_client(pki, "/OU=thermostats/CN=t-cert-1", "t-cert-1"),
        "t-cert-2": issue_client(pki, "/OU=thermostats/CN=t-cert-2", "t-cert-2"),
        "plain-1": issue_client(pki, "/OU=devices/CN=plain-1", "plain-1"),
    }


@pytest.fixture(scope="module")
def users_db(tmp_path_factory):
    """The credential store: thermostats whose building and room are attributes (as the example file
    binds them), and one whose building attribute is a wildcard."""
    db = tmp_path_factory.mktemp("topics-users") / "firehook.db"
    user_add(db, "t-b1-r1", ["thermostat"], {"building": "b1", "room": "r1"})
    user_add(db, "t-b1-r2", ["thermostat"], {"building": "b1", "room": "r2"})
    user_add(db, "t-b2-r1", ["thermostat"], {"building": "b2", "room": "r1"})
    user_add(db, "t-wild", ["thermostat"], {"building": "+", "room": "r1"})
    user_add(db, "t-slash", ["thermostat"], {"building": "b1/rooms/r1", "room": "r1"})
    return db


@pytest.fixture
def make_fleet(start_broker, pki, jwt_key, users_db, certs, clients):
    """Factory: make_fleet(overrides=None, topics=topics_toml()) -> Fleet over a new broker."""
    made = []

    def make(overrides=None, topics=None):
        b = start_with_topics(start_broker, topics or topics_toml(), fleet_config(pki, users_db, jwt_key[1], overrides))
        f = Fleet(b, pki, jwt_key[0], clients)
        f.certs = certs
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


@pytest.fixture
def fleet(make_fleet):
    return make_fleet()
