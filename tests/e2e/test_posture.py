"""`firehook audit -c FILE`: the security posture report. Each risk of docs/audit.md is found in a
configuration made to have it, at the key where it is, with a fix; exit 1 when one is high, 0 for a
configuration that leaves none high. Certificates are made at test time with `openssl`."""

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import firehook_binary, write_config

REPO = Path(__file__).resolve().parents[2]


def openssl_cert(directory, name, key_args, days=365):
    key, crt = directory / f"{name}.key", directory / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", *key_args, "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", str(days), "-subj", f"/CN={name}"], check=True, capture_output=True)
    return crt, key


P256 = ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]


def tls_listener(crt, key, **extra):
    tls = {"cert": str(crt), "key": str(key)}
    tls.update(extra)
    return {"name": "devices", "address": "0.0.0.0", "port": 8883, "protocol": "mqtts",
            "allow_anonymous": False, "tls": tls}


def good(tmp_path):
    """A configuration that leaves nothing high open: TLS, no anonymous access, a topics file."""
    crt, key = openssl_cert(tmp_path, "server", P256)
    topics = tmp_path / "topics.toml"
    shutil.copy(REPO / "examples" / "topics.toml", topics)
    return {"listener": [tls_listener(crt, key)], "topics": str(topics)}


def posture(tmp_path, settings, name="firehook.toml"):
    path, lines = write_config(tmp_path, settings, name=name)
    p = subprocess.run([firehook_binary(), "audit", "-c", str(path)], capture_output=True, text=True, timeout=60)
    return p, path, lines


def finding(p, level, path, lines, key, words):
    """The report has a `level` finding at `key`'s line, mentioning `words`, with a fix."""
    where = f"{path}:{lines[key]}:" if key in lines else f"{path}:"
    for i, line in enumerate(p.stdout.splitlines()):
        if line.startswith(level) and where in line and f"{key}: " in line and words in line:
            assert p.stdout.splitlines()[i + 1].strip().startswith("fix: "), p.stdout
            return
    raise AssertionError(f"no {level} finding at {where} {key} with {words!r}:\n{p.stdout}")


def test_a_good_configuration_has_nothing_high(tmp_path):
    p, path, _ = posture(tmp_path, good(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{path}: 0 high" in p.stdout, p.stdout


def test_plaintext_anonymous_no_topics_audit_off_and_no_identity_limits(tmp_path):
    settings = {"listener": [{"name": "open", "address": "0.0.0.0", "port": 1883, "protocol": "mqtt",
                              "allow_plaintext": True, "allow_anonymous": True}],
                "audit": {"enabled": False},
                "limits": {"max_sessions_per_identity": 0}}
    p, path, lines = posture(tmp_path, settings)
    assert p.returncode == 1, p.stdout
    finding(p, "HIGH", path, lines, "listener[0].protocol", "plaintext MQTT on 0.0.0.0")
    finding(p, "HIGH", path, lines, "listener[0].allow_anonymous", "anonymous clients")
    finding(p, "HIGH", path, lines, "topics", "no topics file")
    finding(p, "HIGH", path, lines, "audit.enabled", "audit log is off")
    finding(p, "MEDIUM", path, lines, "limits.max_sessions_per_identity", "no limit per identity")


def test_weak_and_expiring_certificates_and_a_ca_without_crl(tmp_path):
    settings = good(tmp_path)
    weak, weak_key = openssl_cert(tmp_path, "weak", ["rsa:1024"])
    ca, _ = openssl_cert(tmp_path, "devices-ca", P256, days=10)
    settings["listener"] = [tls_listener(weak, weak_key, ca=str(ca), client_certificates="required")]
    p, path, lines = posture(tmp_path, settings)
    assert p.returncode == 1, p.stdout
    finding(p, "HIGH", path, lines, "listener[0].tls.cert", "weak key (RSA 1024 bits)")
    finding(p, "MEDIUM", path, lines, "listener[0].tls.ca", "expires in")
    finding(p, "MEDIUM", path, lines, "listener[0].tls.ca", "without a CRL")


def issuer_key(tmp_path):
    pem = tmp_path / "issuer.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(tmp_path / "issuer.key")], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(tmp_path / "issuer.key"), "-pubout", "-out", str(pem)], check=True)
    return pem


def test_tokens_without_exp_and_certificate_client_ids_not_bound(tmp_path):
    settings = good(tmp_path)
    settings["auth"] = {"jwt": {"public_keys": [str(issuer_key(tmp_path))], "max_lifetime": 0},
                        "certificate": {"client_id": "any"}}
    ca, _ = openssl_cert(tmp_path, "devices-ca", P256)
    crl_less = settings["listener"][0]
    crl_less["tls"].update(ca=str(ca), client_certificates="required")
    p, path, lines = posture(tmp_path, settings)
    assert p.returncode == 1, p.stdout
    # required_claims is not in the file (its default lacks "exp"): reported without a line.
    assert f'HIGH   {path}: auth.jwt.required_claims: a token without "exp"' in p.stdout, p.stdout
    finding(p, "MEDIUM", path, lines, "auth.certificate.client_id", "may use any client id")


@pytest.mark.parametrize("lifetime,level,words", [
    (0, "MEDIUM", "no bound on token lifetimes"),
    (30 * 86400, "LOW", "tokens valid for up to 30 days"),
])
def test_long_token_lifetimes(tmp_path, lifetime, level, words):
    settings = good(tmp_path)
    settings["auth"] = {"jwt": {"public_keys": [str(issuer_key(tmp_path))], "required_claims": ["exp"],
                                "max_lifetime": lifetime}}
    p, path, lines = posture(tmp_path, settings)
    finding(p, level, path, lines, "auth.jwt.max_lifetime", words)
    assert "auth.jwt.required_claims" not in p.stdout, p.stdout


def test_the_default_token_lifetime_is_no_risk(tmp_path):
    settings = good(tmp_path)
    settings["auth"] = {"jwt": {"public_keys": [str(issuer_key(tmp_path))]}}  # max_lifetime: one day
    p, path, _ = posture(tmp_path, settings)
    assert "max_lifetime" not in p.stdout and "required_claims" not in p.stdout, p.stdout


def test_users_sharing_one_password_hash(tmp_path):
    """Two users imported with one copied Mosquitto hash share a password; a third with the same
    password hashed on its own (its own salt) does not show."""
    db = tmp_path / "users.db"
    pwfile = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pwfile), "alice", "s3cret"], check=True, capture_output=True)
    subprocess.run(["mosquitto_passwd", "-b", str(pwfile), "carol", "s3cret"], check=True, capture_output=True)
    alice = pwfile.read_text().splitlines()[0]
    pwfile.write_text(pwfile.read_text() + "bob:" + alice.split(":", 1)[1] + "\n")
    subprocess.run([firehook_binary(), "user", "--db", str(db), "import-mosquitto", str(pwfile)], check=True,
                   capture_output=True)
    settings = good(tmp_path)
    settings["auth"] = {"password": {"database": str(db)}}
    p, path, lines = posture(tmp_path, settings)
    finding(p, "MEDIUM", db, {}, "users", "2 users share one password hash (alice, bob)")
    assert "carol" not in p.stdout, p.stdout


def test_risky_grants_in_the_topics_file_are_reported_where_they_are(tmp_path):
    settings = good(tmp_path)
    topics = Path(settings["topics"])
    text = topics.read_text() + '\n[[topic]]\npattern = "{site}/#"\ndescription = "everything below a site"\n' \
        'subscribe = ["thermostat"]\n'
    topics.write_text(text)
    grant_line = len(text.splitlines())  # the subscribe line, the last one
    p, path, _ = posture(tmp_path, settings)
    assert p.returncode == 0, p.stdout  # medium only
    assert f"MEDIUM {topics}:{grant_line}:" in p.stdout and "a wildcard over the first level" in p.stdout, p.stdout


def test_a_deny_rule_that_denies_nothing_is_reported_where_it_is(tmp_path):
    settings = good(tmp_path)
    topics = Path(settings["topics"])
    # A typo: thermostats are granted nothing under "internal/" anyway, and nothing under "interal/".
    text = topics.read_text() + '\n[[deny]]\npattern = "interal/#"\nroles = ["thermostat"]\n'
    topics.write_text(text)
    deny_line = len(text.splitlines()) - 2  # the [[deny]] header
    p, path, _ = posture(tmp_path, settings)
    assert p.returncode == 0, p.stdout  # low
    assert f"LOW    {topics}:{deny_line}:" in p.stdout and '"interal/#" has no effect' in p.stdout, p.stdout
    # The example's own deny rules all deny something.
    assert p.stdout.count("has no effect") == 1, p.stdout


def test_rates_and_budgets_turned_off(tmp_path):
    crt, key = openssl_cert(tmp_path, "server", P256)
    gateways = dict(tls_listener(crt, key), name="gateways", port=8884, rate_limits={"publish_rate": 0})
    settings = dict(good(tmp_path), abuse={"allowlist": ["10.1.0.0/16", "0.0.0.0/0", "::/0"]})
    settings["listener"].append(gateways)
    p, path, lines = posture(tmp_path, settings)
    finding(p, "LOW", path, lines, "listener[1].rate_limits.publish_rate", "no publish rate")
    finding(p, "MEDIUM", path, lines, "abuse.allowlist", "the allowlist holds 0.0.0.0/0")
    finding(p, "MEDIUM", path, lines, "abuse.allowlist", "the allowlist holds ::/0")
    assert "holds 10.1.0.0/16" not in p.stdout, p.stdout  # a gateway's network is what the allowlist is for

    settings = dict(good(tmp_path), limits={"publish_rate": 0})
    p, path, lines = posture(tmp_path, settings)
    finding(p, "MEDIUM", path, lines, "limits.publish_rate", "no publish rate")
    assert "rate_limits.publish_rate" not in p.stdout, p.stdout  # once, where it is turned off
