"""App-only certificates are checked before msal signs with them: RSA only, owner-only permissions, the key
matching the certificate, valid dates — each refusal one line with its fix (exit 78), never a traceback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from typer.testing import CliRunner

from tests.support.fakes.microsoft_server import CLIENT_ID, TENANT, USER
from xoromail_cli.cli import app
from xoromail_cli.errors import ConfigError
from xoromail_cli.services.microsoft365 import certificate


def write_pem(tmp_path: Path, leaf: trustme.LeafCert, name: str = "app.pem", mode: int = 0o600) -> Path:
    pem = tmp_path / name
    pem.write_bytes(leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes())
    pem.chmod(mode)
    return pem


def rsa_leaf(not_before: datetime | None = None, not_after: datetime | None = None) -> trustme.LeafCert:
    return trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("xoromail-app", key_type=trustme.KeyType.RSA,
                                                               not_before=not_before, not_after=not_after)


def test_an_rsa_certificate_valid_today_loads_with_its_dates(tmp_path: Path) -> None:
    not_after = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    loaded = certificate.load(str(write_pem(tmp_path, rsa_leaf(not_after=not_after))))
    assert loaded.not_after == not_after and "BEGIN CERTIFICATE" in loaded.public_certificate
    assert certificate.expires(str(tmp_path / "app.pem")) == not_after


def test_an_ec_key_is_refused_with_the_reason(tmp_path: Path) -> None:
    leaf = trustme.CA().issue_cert("xoromail-app", key_type=trustme.KeyType.ECDSA)
    with pytest.raises(ConfigError) as caught:
        certificate.load(str(write_pem(tmp_path, leaf)))
    assert "not RSA" in caught.value.message and "Entra ID app certificate credentials are RSA" in caught.value.message
    assert "rsa:2048" in (caught.value.hint or "")


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    pem = write_pem(tmp_path, rsa_leaf(), mode=0o644)
    with pytest.raises(ConfigError) as caught:
        certificate.load(str(pem))
    assert "readable by others" in caught.value.message and f"chmod 600 {pem}" in (caught.value.hint or "")


@pytest.mark.parametrize(("dates", "says"), [
    ({"not_after": datetime(2025, 1, 1, tzinfo=UTC)}, "expired on 2025-01-01"),
    ({"not_before": datetime.now(UTC) + timedelta(days=2)}, "not valid before"),
])
def test_dates_outside_today_are_refused(tmp_path: Path, dates: dict[str, datetime], says: str) -> None:
    if "not_after" in dates:
        dates["not_before"] = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match=says):
        certificate.load(str(write_pem(tmp_path, rsa_leaf(**dates))))


def test_a_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    one, other = rsa_leaf(), rsa_leaf()
    pem = tmp_path / "mixed.pem"
    pem.write_bytes(one.private_key_pem.bytes() + other.cert_chain_pems[0].bytes())
    pem.chmod(0o600)
    with pytest.raises(ConfigError, match="do not belong together"):
        certificate.load(str(pem))


def test_setup_with_an_ec_key_exits_78_without_a_traceback(runner: CliRunner, tmp_path: Path,
                                                           config_path: Path) -> None:
    leaf = trustme.CA().issue_cert("xoromail-app", key_type=trustme.KeyType.ECDSA)
    pem = write_pem(tmp_path, leaf)
    result = runner.invoke(app, ["--config", str(config_path), "setup", "--service", "microsoft365", "--email", USER,
                                 "--display-name", "Billing", "--tenant", TENANT, "--client-id", CLIENT_ID,
                                 "--certificate", str(pem)])
    assert result.exit_code == 78, result.output
    assert "Traceback" not in result.output and "not RSA" in result.output
    assert not config_path.exists()
