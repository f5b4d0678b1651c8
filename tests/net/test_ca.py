"""The lab CA: RFC 5280-conformant certificates, files on disk, caching, regeneration."""

from __future__ import annotations

import datetime as dt
import shutil
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wirelab.errors import ConfigError
from wirelab.net.ca import LabCA

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return LabCA.load_or_create(tmp_path_factory.mktemp("ca") / "ca")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ca_certificate_follows_rfc_5280(ca: LabCA) -> None:
    cert = ca.certificate
    assert cert.version is x509.Version.v3
    assert 0 < cert.serial_number < 2**159
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert cert.not_valid_before_utc < NOW < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - NOW > dt.timedelta(days=9 * 365)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(cert)  # self-signed
    assert ca.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert ca.cert_path.read_bytes() == ca.cert_pem


def test_server_leaf_follows_rfc_5280(ca: LabCA) -> None:
    issued = ca.issue(["localhost", "WWW.Example.COM."])
    cert = issued.certificate
    assert cert.version is x509.Version.v3
    cert.verify_directly_issued_by(ca.certificate)
    assert issued.names == ["localhost", "www.example.com", "127.0.0.1", "::1"]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.key_cert_sign and not usage.value.key_encipherment
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == ca_ski.value.digest
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert issued.chain_pem == ca.cert_pem
    assert cert.not_valid_after_utc - NOW < dt.timedelta(days=826)


def test_client_and_rsa_leaves(ca: LabCA) -> None:
    issued = ca.issue(["alice.example"], ip_addresses=(), client=True, key="rsa")
    cert = issued.certificate
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment  # RSA key exchange (TLS 1.2)
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    assert issued.names == ["alice.example"]


def test_names_are_normalised_and_validated(ca: LabCA) -> None:
    issued = ca.issue(["127.0.0.2", "*.lab.example", "bücher.example"], ip_addresses=["::1"])
    assert issued.names == ["*.lab.example", "xn--bcher-kva.example", "::1", "127.0.0.2"]
    long_name = ".".join(["a" * 30] * 3)  # 92 characters: too long for a common name
    cert = ca.issue([long_name]).certificate
    assert not cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    for bad in (["bad host"], ["-dash.example"], ["*.com"], ["a..b"]):
        with pytest.raises(ConfigError, match="not a valid host name"):
            ca.issue(bad)
    with pytest.raises(ConfigError, match="not an IP address"):
        ca.issue(["localhost"], ip_addresses=["localhost"])
    with pytest.raises(ConfigError, match="at least one"):
        ca.issue([], ip_addresses=())
    with pytest.raises(ConfigError, match="unknown key kind"):
        ca.issue(["localhost"], key="dsa")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="days"):
        ca.issue(["localhost"], days=0)


def test_validity_can_be_set_for_broken_certificates(ca: LabCA) -> None:
    start, end = NOW - dt.timedelta(days=30), NOW - dt.timedelta(days=1)
    cert = ca.issue(["localhost"], not_before=start, not_after=end).certificate
    assert cert.not_valid_before_utc == start.replace(microsecond=0)
    assert cert.not_valid_after_utc == end.replace(microsecond=0)
    # a leaf never outlives its CA unless asked to
    long_lived = ca.issue(["localhost"], days=100_000).certificate
    assert long_lived.not_valid_after_utc == ca.certificate.not_valid_after_utc


@pytest.mark.skipif(not Path(OPENSSL).exists(), reason="the openssl binary is not installed")
def test_openssl_verify_x509_strict(ca: LabCA, tmp_path: Path) -> None:
    cases = {
        "server": (ca.issue(["localhost", "www.example.com"]), "sslserver"),
        "client": (ca.issue(["alice.example"], client=True), "sslclient"),
        "rsa": (ca.issue(["localhost"], key="rsa"), "sslserver"),
    }
    checks = [[str(ca.cert_path)]]  # the CA itself, then each leaf for its purpose
    for stem, (issued, purpose) in cases.items():
        leaf = tmp_path / f"{stem}.pem"
        leaf.write_bytes(issued.cert_pem)
        checks.append(["-purpose", purpose, str(leaf)])
    for check in checks:
        result = subprocess.run(
            [OPENSSL, "verify", "-x509_strict", "-CAfile", str(ca.cert_path), *check],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip().endswith(": OK")


def test_load_or_create_is_idempotent_and_private(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "ca"
    first = LabCA.load_or_create(directory)
    second = LabCA.load_or_create(directory)
    assert second.cert_pem == first.cert_pem
    assert first.cert_path == directory / "ca.pem"
    assert mode(directory) == 0o700
    assert mode(first.key_path) == 0o600
    assert mode(first.cert_path) == 0o644
    assert first.certificate.subject.rfc4514_string() == "CN=wirelab lab CA,O=wirelab lab"
    assert not list(directory.glob(".*.tmp"))


def test_load_or_create_replaces_an_unusable_ca(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    original = LabCA.load_or_create(directory)

    (directory / "ca.pem").write_bytes(b"not a certificate")
    unreadable = LabCA.load_or_create(directory)
    assert unreadable.cert_pem != original.cert_pem
    assert unreadable.certificate.public_key() != original.certificate.public_key()

    other = LabCA.load_or_create(tmp_path / "other")
    shutil.copy(other.key_path, directory / "ca-key.pem")
    mismatched = LabCA.load_or_create(directory)
    assert mismatched.cert_pem not in (unreadable.cert_pem, other.cert_pem)

    expired = LabCA.create(
        directory,
        not_before=NOW - dt.timedelta(days=800),
        not_after=NOW - dt.timedelta(days=1),
    )
    assert expired.certificate.not_valid_after_utc < NOW
    renewed = LabCA.load_or_create(directory)
    assert renewed.certificate.not_valid_after_utc > NOW + dt.timedelta(days=3000)
    assert mode(renewed.key_path) == 0o600


def test_server_cert_for_reuses_its_cache(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    ca = LabCA.load_or_create(directory)
    cert, key = ca.server_cert_for(["www.example.com", "localhost"], directory)
    assert cert.parent == directory / "certs"
    assert mode(key) == 0o600
    pem = cert.read_bytes()
    assert pem.count(b"BEGIN CERTIFICATE") == 2 and pem.endswith(ca.cert_pem)
    again = ca.server_cert_for(["LOCALHOST", "www.example.com"], directory)
    assert again == (cert, key)
    assert cert.read_bytes() == pem  # reused, not minted again
    other_names = ca.server_cert_for(["mail.example.com"], directory)
    assert other_names[0] != cert
    assert ca.server_cert_for(["mail.example.com"])[0] == other_names[0]  # default: CA dir

    renewed_ca = LabCA.create(directory)  # a new CA: the cached leaf is not its own
    cert2, _ = renewed_ca.server_cert_for(["localhost", "www.example.com"], directory)
    assert cert2 == cert and cert2.read_bytes() != pem
    leaf = x509.load_pem_x509_certificates(cert2.read_bytes())[0]
    leaf.verify_directly_issued_by(renewed_ca.certificate)


def test_issued_cert_write_and_load_into(ca: LabCA, tmp_path: Path) -> None:
    issued = ca.issue(["localhost"])
    cert, key = issued.write(tmp_path / "out", "localhost")
    assert (cert.name, key.name) == ("localhost.pem", "localhost-key.pem")
    assert cert.read_bytes() == issued.cert_pem + issued.chain_pem
    assert mode(key) == 0o600
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    issued.load_into(ctx)
    with pytest.raises(ConfigError):
        issued.write(tmp_path, "../escape")
