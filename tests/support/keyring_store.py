"""The one keyring-backed secret store of the tests: a `SecretStore` over the test's real (file) keyring, through
the project's own chunking functions, so what a service stores is what `credentials.Secrets` would read."""

from __future__ import annotations

from dataclasses import dataclass, field

from xoromail_cli.credentials import delete_secret, read_secret, write_secret


@dataclass
class KeyringStore:
    """Secrets of `profile` in the keyring; `writes` lists the kinds written, in order. With `deletes=False` a
    delete fails the test (for code that must never remove a secret)."""

    profile: str = "default"
    deletes: bool = True
    writes: list[str] = field(default_factory=list)

    def get(self, kind: str) -> str | None:
        return read_secret(self.profile, kind)

    def set(self, kind: str, value: str) -> None:
        self.writes.append(kind)
        write_secret(self.profile, kind, value)

    def delete(self, kind: str) -> None:
        if not self.deletes:
            raise AssertionError(f"{kind!r} was deleted by code that never deletes a secret")
        delete_secret(self.profile, kind)
