"""The `jwt` authentication method end to end: a token in the CONNECT password field, checked by
the broker against a PEM public key and a JWKS file, both made at test time with the openssl CLI.
Tokens are signed by PyJWT (Debian's python3-jwt), except the ones PyJWT refuses to make
(`alg: none`, HMAC keyed with a public key), which are put together by hand like an attacker would.

A refused token gets CONNACK 0x86 (5.0) / 0x04 (3.1.1) and the connection is closed; a token that
expires while connected ends the connection then: 5.0 DISCONNECT 0xA0 (Maximum connect time),
3.1.1 a plain close.
"""

import base64
import hashlib
import hmac
import json
import signal
import subprocess
import time

import jwt
import pytest
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from pahoclient import V5, V311, unique
from rawclient import CONNACK, DISCONNECT, connect_packet

ISSUER = "https://issuer.test"
AUDIENCE = "firehook"
REFUSED = {V5: 0x86, V311: 0x04}  # bad user name or password


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Key pairs made with the openssl CLI: RSA (PEM public key in the config), EC P-256 and
    Ed25519 (their public halves in the JWKS file), and an RSA key the broker does not know."""
    d = tmp_path_factory.mktemp("jwt-keys")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.key", cwd=d)
    openssl("pkey", "-in", "rsa.key", "-pubout", "-out", "issuer.pem", cwd=d)
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.key", cwd=d)
    openssl("genpkey", "-algorithm", "ED25519", "-out", "ed.key", cwd=d)
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "stranger.key", cwd=d)
    k = {name: (d / f"{name}.key").read_bytes() for name in ("rsa", "ec", "ed", "stranger")}
    k["issuer.pem"] = d / "issuer.pem"
    ec_jwk = json.loads(ECAlgorithm.to_jwk(load_pem_private_key(k["ec"], None).public_key()))
    ed_jwk = json.loads(OKPAlgorithm.to_jwk(load_pem_private_key(k["ed"], None).public_key()))
    ec_jwk.update(kid="fleet-ec", use="sig", alg="ES256")
    ed_jwk.update(kid="fleet-ed", use="sig")
    k["jwks"] = {"keys": [ec_jwk, ed_jwk]}
    return k


@pytest.fixture
def jwt_broker(start_broker, keys, tmp_path):
    jwks = tmp_path / "fleet.jwks"
    jwks.write_text(json.dumps(keys["jwks"]))
    b = start_broker({
        "listener": [{
            "name": "default", "address": "127.0.0.1", "port": 0, "protocol": "mqtt",
            "allow_anonymous": False, "auth": ["jwt"],
        }],
        "auth.jwt": {
            "public_keys": [str(keys["issuer.pem"])],
            "jwks": str(jwks),
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "leeway": 0,
            "required_claims": ["exp"],
        },
    })
    b.jwks_path = jwks
    return b


def claims(**overrides):
    now = int(time.time())
    c = {"sub": "device-1", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    c.update(overrides)
    return {k: v for k, v in c.items() if v is not None}


def sign(keys, payload, alg="RS256", key="rsa", kid=None):
    headers = {"kid": kid} if kid else None
    return jwt.encode(payload, keys[key], algorithm=alg, headers=headers)


def connect_refused(raw, broker, version, token, username="device-1"):
    """CONNECT with `token`; asserts the CONNACK refuses it and the connection is then closed."""
    r = raw(broker, version)
    r.send(connect_packet(version, unique("jwt"), username=username, password=token))
    got = r.wait_closed()
    assert got and got[0].type == CONNACK, f"expected a CONNACK before the close, got {got!r}"
    assert got[0].reason == REFUSED[version], (
        f"CONNACK {got[0].reason:#04x}, expected {REFUSED[version]:#04x} (bad user name or password)")
    assert len(got) == 1, f"nothing may follow the refusing CONNACK: {got!r}"


def connect_accepted(clients, broker, version, token, username="device-1"):
    c = clients(broker, version, connect=False, client_id=unique("jwt"))
    c.c.username_pw_set(username, token)
    c.connect(expect_rc=0)
    return c


# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg,key,kid", [
    ("RS256", "rsa", None),
    ("PS256", "rsa", "issuer"),  # a PEM key's kid is its file name without the extension
    ("ES256", "ec", "fleet-ec"),
    ("EdDSA", "ed", "fleet-ed"),
])
def test_valid_token_connects(jwt_broker, clients, version, keys, alg, key, kid):
    c = connect_accepted(clients, jwt_broker, version, sign(keys, claims(), alg, key, kid))
    c.roundtrip()


def test_expired_token_refused(jwt_broker, raw, version, keys):
    now = int(time.time())
    connect_refused(raw, jwt_broker, version, sign(keys, claims(iat=now - 600, exp=now - 60)))


def test_not_yet_valid_token_refused(jwt_broker, raw, version, keys):
    connect_refused(raw, jwt_broker, version, sign(keys, claims(nbf=int(time.time()) + 300)))


def test_wrong_audience_refused(jwt_broker, raw, version, keys):
    connect_refused(raw, jwt_broker, version, sign(keys, claims(aud="another-service")))


def test_wrong_issuer_refused(jwt_broker, raw, version, keys):
    connect_refused(raw, jwt_broker, version, sign(keys, claims(iss="https://evil.test")))


def test_token_without_required_exp_refused(jwt_broker, raw, version, keys):
    connect_refused(raw, jwt_broker, version, sign(keys, claims(exp=None)))


def test_token_valid_longer_than_max_lifetime_refused(jwt_broker, raw, clients, version, keys):
    """auth.jwt.max_lifetime is one day by default: a token minted for two days is refused (and
    the log says why); one for a day less a minute is accepted."""
    now = int(time.time())
    connect_refused(raw, jwt_broker, version, sign(keys, claims(exp=now + 2 * 86400)))
    jwt_broker.wait_for_event("auth_denied", method="jwt",
                              predicate=lambda e: "longer than max_lifetime (86400 s)" in e.get("reason", ""))
    connect_accepted(clients, jwt_broker, version, sign(keys, claims(exp=now + 86400 - 60))).roundtrip()


def test_alg_none_refused(jwt_broker, raw, version):
    body = b64(json.dumps(claims()).encode())
    for alg in ("none", "None"):
        header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        connect_refused(raw, jwt_broker, version, f"{header}.{body}.")


def test_hmac_signed_with_the_public_key_refused(jwt_broker, raw, version, keys):
    """Algorithm confusion: HS256 keyed with the bytes of the broker's public key, which anyone
    may have. PyJWT will not make such a token, so it is made by hand."""
    pem = keys["issuer.pem"].read_bytes()
    for kid in (None, "issuer"):
        header = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims(sub='admin')).encode())}"
        mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        connect_refused(raw, jwt_broker, version, f"{signing_input}.{b64(mac)}")


def test_unknown_kid_refused(jwt_broker, raw, version, keys):
    connect_refused(raw, jwt_broker, version, sign(keys, claims(), "ES256", "ec", kid="retired-key"))


def test_unknown_signer_refused(jwt_broker, raw, version, keys):
    connect_refused(raw, jwt_broker, version, sign(keys, claims(), "RS256", "stranger"))


def test_jwks_change_is_picked_up(jwt_broker, clients, raw, keys):
    """A key added to the JWKS file is used without a restart: the file watch sees the new file
    (looked at every second), reloads the key files, and says so in one `reload` event."""
    token = sign(keys, claims(), "RS256", "stranger", kid="rotated-in")
    connect_refused(raw, jwt_broker, V5, token)
    stranger = load_pem_private_key(keys["stranger"], None).public_key()
    new_jwk = json.loads(RSAAlgorithm.to_jwk(stranger))
    new_jwk.update(kid="rotated-in", use="sig")
    since = len(jwt_broker.stderr_text())
    tmp = jwt_broker.jwks_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": keys["jwks"]["keys"] + [new_jwk]}))
    tmp.replace(jwt_broker.jwks_path)
    e = jwt_broker.wait_for_event("reload", since, decision="allow", timeout=5,
                                  predicate=lambda e: e["subject"] == "token keys")
    assert "verification keys" in e["reason"], e
    connect_accepted(clients, jwt_broker, V5, token).roundtrip()


def test_broken_jwks_keeps_the_keys_in_use(jwt_broker, clients, raw, keys):
    """A JWKS file that cannot be used is refused (one `reload` event with deny, naming the file);
    tokens signed with the keys in use still get in, until a good file replaces the broken one."""
    token = sign(keys, claims(), "ES256", "ec")
    since = len(jwt_broker.stderr_text())
    tmp = jwt_broker.jwks_path.with_suffix(".tmp")
    tmp.write_text('{"keys": "not a list"}')
    tmp.replace(jwt_broker.jwks_path)
    e = jwt_broker.wait_for_event("reload", since, decision="deny", timeout=5,
                                  predicate=lambda e: e["subject"] == "token keys")
    assert jwt_broker.jwks_path.name in e["reason"] and "previous version stays in force" in e["reason"], e
    connect_accepted(clients, jwt_broker, V5, token).roundtrip()
    since = len(jwt_broker.stderr_text())
    tmp.write_text(json.dumps({"keys": [k for k in keys["jwks"]["keys"] if k["kty"] != "EC"]}))
    tmp.replace(jwt_broker.jwks_path)
    jwt_broker.send_signal(signal.SIGHUP)
    jwt_broker.wait_for_event("reload", since, decision="allow", timeout=5,
                              predicate=lambda e: e["subject"] == "token keys")
    connect_refused(raw, jwt_broker, V5, token)  # the EC key is gone with the good file


def test_connection_closed_when_token_expires(jwt_broker, raw, version, keys):
    """5.0: DISCONNECT 0xA0 (Maximum connect time) at exp; 3.1.1: the connection is closed."""
    exp = int(time.time()) + 3
    token = sign(keys, claims(exp=exp))
    r = raw(jwt_broker, version)
    r.connect(client_id=unique("jwt"), username="device-1", password=token, expect_rc=0)
    assert r.subscribe("expiry/test").type is not None  # the session works meanwhile
    got = r.wait_closed(timeout=exp - time.time() + 5)
    closed_at = time.time()
    assert closed_at >= exp - 0.5, f"closed {exp - closed_at:.1f}s before the token expired"
    assert closed_at <= exp + 3, f"closed {closed_at - exp:.1f}s after the token expired"
    if version == V5:
        assert [p.type for p in got] == [DISCONNECT], f"expected one DISCONNECT before the close, got {got!r}"
        assert got[0].reason == 0xA0, f"DISCONNECT reason {got[0].reason:#04x}, expected 0xa0"
    else:
        assert got == [], f"3.1.1 has no server DISCONNECT; got {got!r}"


def test_a_client_id_claim_is_the_only_client_id_the_token_may_use(jwt_broker, raw, version, keys):
    """[auth.jwt] client_id_claim ("client_id"): the token's holder uses that client id or none
    (5.0: then assigned it); another one is refused with 0x85 Client Identifier not valid (3.1.1: 0x02)."""
    token = sign(keys, claims(client_id="meter-11"))

    def connect(client_id):
        r = raw(jwt_broker, version)
        r.send(connect_packet(version, client_id, username="device-1", password=token))
        ack = r.expect(CONNACK)
        r.close()
        return ack

    assert connect("meter-11").reason == 0
    assert connect("meter-12").reason == (0x85 if version == V5 else 0x02)
    e = jwt_broker.wait_for_event("auth_denied", client_id="meter-12")
    assert 'the token is for client id "meter-11", not "meter-12"' in e["reason"], e
    if version == V5:
        ack = connect("")
        assert ack.reason == 0 and ack.props.get("AssignedClientIdentifier") == "meter-11", ack
