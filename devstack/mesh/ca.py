"""A local certificate authority and one identity per ServiceAccount, in the form each mesh's CA issues it.

- Istio (istiod's CA): a self-signed root kept 10 years (its istio-ca-secret) signs each workload a 24 h
  certificate whose only name is the URI SAN spiffe://<trust domain>/ns/<namespace>/sa/<account>.
- Linkerd (linkerd2 pkg/identity/service.go checkCSR, controller/identity/domain.go): a trust anchor
  (root.linkerd.cluster.local) signs the issuer (identity.linkerd.cluster.local), which signs each proxy a 24 h
  certificate (DefaultIssuanceLifetime) with exactly one DNS SAN, <account>.<namespace>.serviceaccount.identity.
  linkerd.cluster.local (the CSR's common name may only be empty or that name; it is left empty here, the name
  being longer than a common name may be); the proxy presents it with the issuer's certificate.
The roots (and Linkerd's issuer) are made once per data folder and kept; every identity is issued again at each
start, so nothing expires while a stack runs for a day. Keys are ECDSA P-256 (both meshes' default for
workloads; faster to make than RSA 2048, which changes nothing in what the proxies check).
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRUST_DOMAIN = "cluster.local"
LINKERD_SUFFIX = f"serviceaccount.identity.linkerd.{TRUST_DOMAIN}"
ROOT_LIFETIME = datetime.timedelta(days=3650)
WORKLOAD_LIFETIME = datetime.timedelta(hours=24)
# What every stack gets besides the Deployments' ServiceAccounts: `default` is the account of a pod that names
# none, and no policy of ours allows it (the demos' and tests' unauthorised caller).
EXTRA_IDENTITIES = (("e-commerce", "default"),)


def spiffe_id(namespace: str, account: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{account}"


def linkerd_id(namespace: str, account: str) -> str:
    return f"{account}.{namespace}.{LINKERD_SUFFIX}"


@dataclass(frozen=True)
class Form:
    """How one mesh names identities and what its proxies accept from a peer."""

    mesh: str
    san_type: str  # URI | DNS
    root_name: str
    issuer_name: str | None  # an intermediate between the root and the workloads (None: the root signs them)

    def name(self, namespace: str, account: str) -> str:
        return spiffe_id(namespace, account) if self.san_type == "URI" else linkerd_id(namespace, account)

    @property
    def peer_matcher(self) -> dict:
        """Any workload of the trust domain may connect; authorization then decides what it may do."""
        if self.san_type == "URI":
            return {"san_type": "URI", "matcher": {"prefix": f"spiffe://{TRUST_DOMAIN}/"}}
        return {"san_type": "DNS", "matcher": {"suffix": "." + LINKERD_SUFFIX}}


FORMS = {
    "istio": Form("istio", "URI", "local mesh root CA", None),
    "linkerd": Form("linkerd", "DNS", "root.linkerd.cluster.local", "identity.linkerd.cluster.local"),
}


@dataclass(frozen=True)
class Identity:
    namespace: str
    account: str
    cert: Path  # the workload's certificate, then its issuer's when there is one
    key: Path
    id: str  # what peers see: the SPIFFE id or Linkerd's DNS name

    @property
    def name(self) -> str:
        return f"{self.namespace}/{self.account}"


class LocalCA:
    def __init__(self, folder: Path, mesh: str = "istio"):
        self.folder = Path(folder)
        self.form = FORMS[mesh]
        self.cert_path = self.folder / "root-cert.pem"
        self.key_path = self.folder / "root-key.pem"
        self.issuer_cert_path = self.folder / "issuer-cert.pem"
        self.issuer_key_path = self.folder / "issuer-key.pem"

    def ensure_root(self) -> None:
        """Makes the root (and issuer) once; one missing, unreadable or within a day of its end is made anew."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if not usable(self.cert_path, self.key_path):
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "service-mesh-lab"),
                              x509.NameAttribute(NameOID.COMMON_NAME, self.form.root_name)])
            save(self.cert_path, self.key_path, authority(name, name, key.public_key(), key, None), key)
            self.issuer_cert_path.unlink(missing_ok=True)
        if self.form.issuer_name and not usable(self.issuer_cert_path, self.issuer_key_path):
            root_key, root = self.load(self.key_path, self.cert_path)
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.form.issuer_name)])
            save(self.issuer_cert_path, self.issuer_key_path, authority(name, root.subject, key.public_key(), root_key, 0),
                 key)

    @staticmethod
    def load(key_path: Path, cert_path: Path):
        return (serialization.load_pem_private_key(key_path.read_bytes(), password=None),
                x509.load_pem_x509_certificate(cert_path.read_bytes()))

    def identity(self, namespace: str, account: str) -> Identity:
        """Where one account's certificate and key live (issued or not)."""
        folder = self.folder / "identities" / f"{namespace}.{account}"
        return Identity(namespace, account, folder / "cert-chain.pem", folder / "key.pem",
                        self.form.name(namespace, account))

    def issue(self, namespace: str, account: str, lifetime: datetime.timedelta = WORKLOAD_LIFETIME) -> Identity:
        """A fresh key and certificate for one ServiceAccount, named as its mesh names it."""
        signer = (self.issuer_key_path, self.issuer_cert_path) if self.form.issuer_name else (self.key_path, self.cert_path)
        signing_key, signing_cert = self.load(*signer)
        key = ec.generate_private_key(ec.SECP256R1())
        identity = self.identity(namespace, account)
        san = x509.UniformResourceIdentifier(identity.id) if self.form.san_type == "URI" else x509.DNSName(identity.id)
        cert = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(signing_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now() - datetime.timedelta(minutes=5)).not_valid_after(now() + lifetime)
                .add_extension(x509.SubjectAlternativeName([san]), critical=True)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(signing_key, hashes.SHA256()))
        identity.cert.parent.mkdir(parents=True, exist_ok=True)
        write_private(identity.key, pem_key(key))
        chain = cert.public_bytes(serialization.Encoding.PEM)
        if self.form.issuer_name:
            chain += signing_cert.public_bytes(serialization.Encoding.PEM)
        identity.cert.write_bytes(chain)
        return identity


def authority(subject: x509.Name, issuer: x509.Name, public_key, signing_key, path_length: int | None) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number()).not_valid_before(now() - datetime.timedelta(minutes=5))
            .not_valid_after(now() + ROOT_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(signing_key, hashes.SHA256()))


def usable(cert_path: Path, key_path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - now() > datetime.timedelta(days=1)


def pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def save(cert_path: Path, key_path: Path, cert: x509.Certificate, key) -> None:
    write_private(key_path, pem_key(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def write_private(path: Path, data: bytes) -> None:
    """Keys are readable by their owner only, from the moment they exist."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
