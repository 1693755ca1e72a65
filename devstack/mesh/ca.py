"""A local certificate authority and one SPIFFE identity per ServiceAccount, as istiod's CA issues them.

istiod signs each workload a short-lived certificate (24 h by default) whose only name is the URI SAN
spiffe://<trust domain>/ns/<namespace>/sa/<account>, under a self-signed root it keeps for 10 years (its
istio-ca-secret). Here the root is made once per data folder and kept; every identity is issued again at each
start, so nothing expires while a stack runs for a day. The keys are ECDSA P-256 (istiod's ECC option; faster
to make than RSA 2048, which changes nothing in what the proxies check).
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
ROOT_LIFETIME = datetime.timedelta(days=3650)
WORKLOAD_LIFETIME = datetime.timedelta(hours=24)
# What every stack gets besides the Deployments' ServiceAccounts: `default` is the account of a pod that names
# none, and no policy of ours allows it (the demos' and tests' unauthorised caller).
EXTRA_IDENTITIES = (("e-commerce", "default"),)


def spiffe_id(namespace: str, account: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{account}"


@dataclass(frozen=True)
class Identity:
    namespace: str
    account: str
    cert: Path
    key: Path

    @property
    def spiffe(self) -> str:
        return spiffe_id(self.namespace, self.account)

    @property
    def name(self) -> str:
        return f"{self.namespace}/{self.account}"


class LocalCA:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.cert_path = self.folder / "root-cert.pem"
        self.key_path = self.folder / "root-key.pem"

    def ensure_root(self) -> None:
        """Makes the root once; a root that is missing, unreadable or within a day of its end is made anew."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
            serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
            if cert.not_valid_after_utc - now() > datetime.timedelta(days=1):
                return
        except (OSError, ValueError):
            pass
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "service-mesh-lab"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "local mesh root CA")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now() - datetime.timedelta(minutes=5))
                .not_valid_after(now() + ROOT_LIFETIME)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        write_private(self.key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def identity(self, namespace: str, account: str) -> Identity:
        """Where one account's certificate and key live (issued or not)."""
        folder = self.folder / "identities" / f"{namespace}.{account}"
        return Identity(namespace, account, folder / "cert-chain.pem", folder / "key.pem")

    def issue(self, namespace: str, account: str, lifetime: datetime.timedelta = WORKLOAD_LIFETIME) -> Identity:
        """A fresh key and certificate for one ServiceAccount: no subject, the SPIFFE id as the only SAN."""
        root_key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        root = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        uri = spiffe_id(namespace, account)
        cert = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(root.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now() - datetime.timedelta(minutes=5)).not_valid_after(now() + lifetime)
                .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=True)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(root_key, hashes.SHA256()))
        identity = self.identity(namespace, account)
        identity.cert.parent.mkdir(parents=True, exist_ok=True)
        write_private(identity.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
        identity.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return identity


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def write_private(path: Path, data: bytes) -> None:
    """Keys are readable by their owner only, from the moment they exist."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
