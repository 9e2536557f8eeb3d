"""MAIL FROM and RCPT TO carry each address exactly as smtplib.quoteaddr would write it, with or without its parser."""

from __future__ import annotations

import random
import smtplib

import pytest

from xoromail_cli.services.smtp.pipelining import quote_address

ATOM = "abcXYZ019!#$%&'*+/=?^_`{|}~-"


@pytest.mark.parametrize("address", [
    "ann@client.test", "billing@company.test", "o'brien+invoices@mail.example.co.uk", "a@b", "x_y-z@[127.0.0.1]",
    "a..b@c.test", ".a@c.test", "a.@c.test", '"john doe"@c.test', "Ann <ann@client.test>", "ann@client.test ",
    "ann@-c.test", "ann@c..test", "", "<ann@client.test>", "ann", "üser@client.test", "ann@clïent.test",
    "a(comment)@c.test", "a@c.test>", "a,b@c.test",
])
def test_the_quoted_address_is_smtplibs(address: str) -> None:
    assert quote_address(address) == smtplib.quoteaddr(address)


def test_random_dot_atom_addresses_are_quoted_as_smtplib_does() -> None:
    rng = random.Random(24)
    for _ in range(2000):
        local = ".".join("".join(rng.choice(ATOM) for _ in range(rng.randint(1, 6))) for _ in range(rng.randint(1, 3)))
        domain = ".".join("".join(rng.choice("abz09-") for _ in range(rng.randint(1, 6)))
                          for _ in range(rng.randint(1, 3)))
        address = f"{local}@{domain}"
        assert quote_address(address) == smtplib.quoteaddr(address), address
