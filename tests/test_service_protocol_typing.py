"""Every registered service keeps the whole `Service` protocol: mypy checks these assignments, and the test
checks that the registry hands out exactly these objects."""

from __future__ import annotations

from xoromail_cli import services
from xoromail_cli.services.base import Service
from xoromail_cli.services.exchange.service import SERVICE as EXCHANGE
from xoromail_cli.services.google.service import SERVICE as GOOGLE
from xoromail_cli.services.microsoft365.service import SERVICE as MICROSOFT365
from xoromail_cli.services.smtp.service import SERVICE as SMTP

TYPED: dict[str, Service] = {"smtp": SMTP, "exchange": EXCHANGE, "google": GOOGLE, "microsoft365": MICROSOFT365}


def test_the_registry_hands_out_each_service_that_keeps_the_protocol() -> None:
    assert set(services.REGISTRY) == set(TYPED)
    for name, service in TYPED.items():
        assert services.get(name) is service and service.name == name


def test_every_services_secret_kinds_are_what_disconnect_forgets() -> None:
    for service in TYPED.values():
        assert service.secret_kinds and all(kind.isidentifier() for kind in service.secret_kinds)
