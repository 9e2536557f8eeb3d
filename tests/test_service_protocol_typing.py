"""Every registered service keeps the whole `Service` protocol: mypy checks the typed line each service module ends
with (`KEEPS_PROTOCOL: Service = SERVICE`, in its own package), and the runtime check covers whatever the registry
lists, so a service added to the registry is checked from its first line (and fails the first test until its
module carries the typed line)."""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path

import pytest

from xoromail_cli import services
from xoromail_cli.services.base import Service, ServiceBase


def typed_for_mypy(module: str) -> bool:
    """Whether `module`'s source has the line mypy checks the protocol by: `KEEPS_PROTOCOL: Service = SERVICE`."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, f"no module {module}"
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    return any(isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
               and node.target.id == "KEEPS_PROTOCOL" and ast.unparse(node.annotation) == "Service"
               and isinstance(node.value, ast.Name) and node.value.id == "SERVICE" for node in ast.walk(tree))


TYPED: dict[str, Service] = {name: services.get(name) for name in services.REGISTRY
                             if typed_for_mypy(services.REGISTRY[name].module)}
"""The registered services whose module mypy checks against the protocol (all of them: the first test)."""


def protocol_members() -> tuple[set[str], dict[str, inspect.Signature]]:
    """The protocol's attributes and its methods' signatures, read from the class itself."""
    attributes = set(inspect.get_annotations(Service))
    methods = {name: inspect.signature(member) for name, member in vars(Service).items()
               if inspect.isfunction(member) and not name.startswith("_")}
    return attributes, methods


def protocol_gaps(service: object) -> list[str]:
    """What `service` lacks of the protocol: a missing attribute or method, or a method whose parameters
    (names and kinds, `self` aside) differ from the protocol's."""
    attributes, methods = protocol_members()
    gaps = [f"no attribute {name!r}" for name in sorted(attributes) if not hasattr(service, name)]
    for name, wanted in sorted(methods.items()):
        found = getattr(service, name, None)
        if not callable(found):
            gaps.append(f"no method {name}()")
            continue
        expected = [(p.name, p.kind) for p in list(wanted.parameters.values())[1:]]
        actual = [(p.name, p.kind) for p in inspect.signature(found).parameters.values()]
        if expected != actual:
            gaps.append(f"{name}() takes {actual}, the protocol {expected}")
    return gaps


def test_the_registry_hands_out_each_service_that_keeps_the_protocol() -> None:
    assert set(services.REGISTRY) == set(TYPED), ("end each registered service's module with "
                                                  "`if TYPE_CHECKING: KEEPS_PROTOCOL: Service = SERVICE`, so mypy "
                                                  "checks it")
    for name, service in TYPED.items():
        assert services.get(name) is service and service.name == name


@pytest.mark.parametrize("name", sorted(services.REGISTRY))
def test_every_registered_service_is_built_on_the_base_and_keeps_the_protocol_at_run_time(name: str) -> None:
    service = services.get(name)
    assert isinstance(service, ServiceBase)
    assert protocol_gaps(service) == []


def test_the_runtime_check_finds_what_a_service_lacks() -> None:
    """It cannot pass vacuously: a service that forgot a method, or changed its parameters, is reported."""

    class Forgetful(ServiceBase[object]):
        name = label = "forgetful"

        def describe(self, someone: object) -> str:
            return ""

    gaps = protocol_gaps(Forgetful())
    assert "no method open_transport()" in gaps and "no method planned_stages()" in gaps
    assert any(gap.startswith("describe() takes [('someone'") for gap in gaps)
    assert "no attribute 'name'" not in gaps and "no method limits()" not in gaps  # the base's defaults count


def test_every_services_secret_kinds_are_what_disconnect_forgets() -> None:
    for service in TYPED.values():
        assert service.secret_kinds and all(kind.isidentifier() for kind in service.secret_kinds)
