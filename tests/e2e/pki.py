"""A throw-away PKI for the TLS tests, made with the openssl CLI under pytest's tmp_path.

Nothing here is committed: every key and certificate is generated when the session starts
(`pki` fixture, session-scoped, a few hundred milliseconds). Keys are EC P-256 but one.

    ca            the CA the broker trusts for client certificates, and that signs the server's
    server        CN=localhost, SAN DNS:localhost, IP:127.0.0.1, serverAuth
    rsa_server    the same with an RSA 2048 key
    clients       CN=<name>, OU=devices, clientAuth: device-1, device-2, device-3, doomed,
                  revoked (revoked in crl_revoked), expired (valid 2020-01-01 .. 2021-01-01)
    other_ca      a second CA, unknown to the broker, and its client `stranger` (CN=device-1!)
    crl_empty     a CRL of `ca` that revokes nothing
    crl_revoked   revokes `revoked`
    crl_doomed    revokes `revoked` and `doomed` (for the test that drops a live client)

`openssl x509 -req` cannot backdate in OpenSSL 3.0 and faketime is not installed, so every
certificate is issued by `openssl ca` (which takes -startdate/-enddate) from a minimal CA config;
its index also makes `openssl ca -revoke` / `-gencrl` work.

`Pki.issue_server()` issues a fresh server key and certificate (a new serial) for the reload tests.
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

OPENSSL = "openssl"

CLIENT_NAMES = ("device-1", "device-2", "device-3", "doomed", "revoked", "expired")


def openssl(*args, cwd=None, input=None):
    r = subprocess.run([OPENSSL, *map(str, args)], cwd=cwd, input=input, capture_output=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed ({r.returncode}):\n"
                           + r.stderr.decode("utf-8", "replace"))
    return r.stdout.decode("utf-8", "replace")


def cert_serial(cert_path=None, pem=None):
    """The serial number of a certificate file (or PEM text) as upper-case hex without leading zeros."""
    if pem is not None:
        out = openssl("x509", "-noout", "-serial", input=pem.encode()).strip()
    else:
        out = openssl("x509", "-in", cert_path, "-noout", "-serial").strip()
    return out.split("=", 1)[1].lstrip("0").upper() or "0"  # "serial=1003"


@dataclass(frozen=True)
class Identity:
    cert: Path
    key: Path
    cn: str

    @property
    def serial(self):
        return cert_serial(self.cert)


CA_CONFIG = """\
[ ca ]
default_ca = firehook_test_ca

[ firehook_test_ca ]
dir              = {dir}
database         = $dir/index.txt
new_certs_dir    = $dir/issued
serial           = $dir/serial
crlnumber        = $dir/crlnumber
certificate      = $dir/ca.crt
private_key      = $dir/ca.key
default_md       = sha256
default_days     = 365
default_crl_days = 30
policy           = policy_any
unique_subject   = no
copy_extensions  = none
email_in_dn      = no

[ policy_any ]
organizationalUnitName = optional
commonName             = supplied

[ ca_ext ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ server_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ client_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ crl_ext ]
authorityKeyIdentifier = keyid
"""


class CertificateAuthority:
    """One CA in its own folder, driven by `openssl ca`."""

    def __init__(self, directory, name, first_serial):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True)
        (self.dir / "issued").mkdir()
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text(f"{first_serial:04X}\n")
        (self.dir / "crlnumber").write_text("01\n")
        self.config = self.dir / "ca.cnf"
        self.config.write_text(CA_CONFIG.format(dir=self.dir))
        self.cert = self.dir / "ca.crt"
        self.key = self.dir / "ca.key"
        openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.key, "-out", self.cert, "-subj", f"/O=Firehook tests/CN={name}", "-days", "3650",
                "-config", self.config, "-extensions", "ca_ext")
        self._count = 0

    def issue(self, subject, extensions, out_dir, stem, startdate=None, enddate=None, rsa=False):
        """A new EC P-256 key (RSA 2048 with `rsa`) and a certificate for `subject` ("/OU=devices/CN=x")."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        key, cert, csr = out_dir / f"{stem}.key", out_dir / f"{stem}.crt", out_dir / f"{stem}.csr"
        newkey = ["rsa:2048"] if rsa else ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        openssl("req", "-new", "-newkey", *newkey, "-nodes", "-keyout", key, "-out", csr, "-subj", subject)
        dates = []
        if startdate:
            dates += ["-startdate", startdate]
        if enddate:
            dates += ["-enddate", enddate]
        openssl("ca", "-batch", "-notext", "-config", self.config, "-extensions", extensions, "-in", csr, "-out",
                cert, *dates)
        csr.unlink()
        return Identity(cert, key, subject.rsplit("CN=", 1)[1])

    def revoke(self, identity):
        openssl("ca", "-batch", "-config", self.config, "-revoke", identity.cert, "-crl_reason", "keyCompromise")

    def gencrl(self, out):
        openssl("ca", "-batch", "-config", self.config, "-gencrl", "-crlexts", "crl_ext", "-out", out)
        return Path(out)


class Pki:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.ca_authority = CertificateAuthority(self.dir / "ca", "Firehook Test CA", 0x1000)
        self.ca = self.ca_authority.cert
        self.server = self.issue_server()
        # RSA only for the test that a non-ECDHE (RSA key exchange) suite is refused: with an EC key
        # the server could not use such a suite anyway, so the refusal would prove nothing.
        self.rsa_server = self.issue_server(rsa=True)
        self.clients = {
            name: self.ca_authority.issue(f"/OU=devices/CN={name}", "client_ext", self.dir / "clients", name)
            for name in CLIENT_NAMES
            if name != "expired"
        }
        self.clients["expired"] = self.ca_authority.issue("/OU=devices/CN=expired", "client_ext",
                                                          self.dir / "clients", "expired",
                                                          startdate="20200101000000Z", enddate="20210101000000Z")
        self.crl_empty = self.ca_authority.gencrl(self.dir / "crl-empty.pem")
        self.ca_authority.revoke(self.clients["revoked"])
        self.crl_revoked = self.ca_authority.gencrl(self.dir / "crl-revoked.pem")
        self.ca_authority.revoke(self.clients["doomed"])
        self.crl_doomed = self.ca_authority.gencrl(self.dir / "crl-doomed.pem")

        self.other_authority = CertificateAuthority(self.dir / "other-ca", "Some Other CA", 0x5000)
        self.other_ca = self.other_authority.cert
        # Same CN as a real device: only the issuer tells them apart.
        self.stranger = self.other_authority.issue("/OU=devices/CN=device-1", "client_ext", self.dir / "other",
                                                   "stranger")

    def issue_server(self, rsa=False):
        """A fresh server key and certificate (CN=localhost) signed by `ca`; each call a new serial."""
        self._servers = getattr(self, "_servers", 0) + 1
        return self.ca_authority.issue("/CN=localhost", "server_ext", self.dir / "servers", f"server{self._servers}",
                                       rsa=rsa)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The session's test PKI (see the module docstring)."""
    return Pki(tmp_path_factory.mktemp("pki"))
