"""Every event renders and arrives intact at a real server; templates cannot inject headers or HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, profile_for
from tests.support.samples import smtp_profile
from xoromail_cli.compose.events import EVENTS, Event
from xoromail_cli.compose.mime import Attachment
from xoromail_cli.compose.render import Recipients, Renderer, check_variables, compose, format_money
from xoromail_cli.errors import ConfigError, DataError
from xoromail_cli.pacing import now
from xoromail_cli.services.smtp.transport import SmtpEndpoint, SmtpTransport

PROFILE = smtp_profile(name="default", email="billing@company.test", host="127.0.0.1", port=25,
                  display_name="Company Billing", company_name="ACME Ltd", currency="EUR",
                  reply_to="accounts@company.test")


def sample_variables(event: Event) -> dict[str, Any]:
    values = {name: f"{name.upper()}-1" for name in event.variables}
    for name in values:
        if name.endswith(("_link", "_url")):
            values[name] = f"https://pay.company.test/{name}"
        if name.startswith("amount"):
            values[name] = "1234.5"
    return values


@pytest.fixture
def slip(tmp_path: Path) -> Attachment:
    pdf = tmp_path / "packing-slip 42.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 40)
    return Attachment.from_path(pdf)


@pytest.mark.parametrize("name", list(EVENTS))
def test_each_event_arrives_with_subject_text_html_and_headers(
        name: str, smtp_server: ServerFactory, tls: TLSFiles, slip: Attachment) -> None:
    event = EVENTS[name]
    server = smtp_server()
    profile = profile_for(server, tls, company_name="ACME Ltd", currency="EUR", reply_to="accounts@company.test")
    variables = sample_variables(event)
    attachments = (slip,) if event.needs_attachment else ()
    envelope, rendered = compose(profile, Renderer(profile), event, Recipients(("customer@client.test",)),
                                 variables, attachments=attachments)
    transport = SmtpTransport(SmtpEndpoint.from_profile(profile), PASSWORD)
    transport.open()
    try:
        assert transport.send(envelope).ok
    finally:
        transport.close()
    message = server.messages[0].parsed()
    assert message["Subject"] == rendered.subject
    assert message["From"] == f"Company Billing <{profile.email}>"
    assert message["Reply-To"] == "accounts@company.test"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == envelope.message_id and envelope.message_id.endswith("@company.test>")
    from email.utils import parsedate_to_datetime

    assert abs((parsedate_to_datetime(message["Date"]) - now()).total_seconds()) < 60
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    text_content, html_content = text.get_content(), html.get_content()
    for variable in event.required:
        if not variable.startswith("amount"):
            assert str(variables[variable]) in text_content, variable
    assert "EUR 1,234.50" in text_content or not any(v.startswith("amount") for v in event.required)
    assert "ACME Ltd" in text_content and "<html>" in html_content
    if event.needs_attachment:
        parts = list(message.iter_attachments())
        assert [(p.get_filename(), p.get_content_type()) for p in parts] == [("packing-slip 42.pdf", "application/pdf")]
        assert parts[0].get_content() == slip.path.read_bytes()


def test_html_is_escaped_but_text_is_not() -> None:
    event = EVENTS["order-release"]
    rendered = Renderer(PROFILE).render(event, {"customer_name": "<script>alert(1)</script>", "order_number": "7"})
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "<script>" not in rendered.html
    assert "Dear <script>alert(1)</script>," in rendered.text


def test_non_ascii_names_and_subjects_round_trip(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    profile = smtp_profile(name="x", email="facturas@empresa.test", host="h", port=25, display_name="Facturación Ñandú")
    envelope, _ = compose(profile, Renderer(profile), EVENTS["order-release"], Recipients(("c@x.test",)),
                          {"customer_name": "Zoë Müller-Łukasz", "order_number": "Ä-1"}, subject="Bestellung Ä-1 — ✓")
    from email import message_from_bytes, policy

    parsed = message_from_bytes(envelope.data, policy=policy.default)
    assert parsed["Subject"] == "Bestellung Ä-1 — ✓"
    assert parsed["From"].addresses[0].display_name == "Facturación Ñandú"
    body = parsed.get_body(("plain",))
    assert body is not None and "Zoë Müller-Łukasz" in body.get_content()
    assert all(len(line) <= 998 for line in envelope.data.split(b"\r\n"))


def test_line_breaks_in_variables_used_in_the_subject_are_refused() -> None:
    event = EVENTS["ship-confirmation"]
    variables = {"customer_name": "Bob", "order_number": "1\r\nBcc: victim@evil.test", "carrier": "DHL",
                 "tracking_number": "T"}
    with pytest.raises(DataError, match="line break"):
        Renderer(PROFILE).render(event, variables)
    assert Renderer(PROFILE).subject_variables(event) == {"order_number"}
    with pytest.raises(DataError, match="used in the subject"):
        check_variables(event, variables, header_variables={"order_number"})


def test_line_breaks_in_body_only_variables_are_kept_in_the_body() -> None:
    rendered = Renderer(PROFILE).render(EVENTS["goods-received"], {
        "vendor_name": "V", "po_number": "PO-1", "received_date": "today", "notes": "line one\nline two"})
    assert "line one\nline two" in rendered.text


def test_subject_override_with_a_line_break_is_refused() -> None:
    with pytest.raises(DataError, match="line break"):
        compose(PROFILE, Renderer(PROFILE), EVENTS["order-release"], Recipients(("c@x.test",)),
                {"customer_name": "a", "order_number": "1"}, subject="Hi\nBcc: x@evil.test")


def test_missing_and_unknown_variables_are_named() -> None:
    event = EVENTS["overdue-invoice"]
    with pytest.raises(DataError, match=r"missing variable\(s\) amount_due, due_date"):
        check_variables(event, {"customer_name": "a", "invoice_number": "1"})
    with pytest.raises(DataError, match=r"unknown variable\(s\) colour"):
        check_variables(event, {**sample_variables(event), "colour": "red"})


def test_payment_links_must_be_web_links() -> None:
    event = EVENTS["invoice-payment-link"]
    with pytest.raises(DataError, match="payment_link must be an http"):
        check_variables(event, {**sample_variables(event), "payment_link": "javascript:alert(1)"})


def test_custom_templates_override_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "order-release").mkdir()
    (tmp_path / "order-release" / "subject.txt").write_text("Released: {{ order_number }} for {{ company_name }}")
    renderer = Renderer(PROFILE, tmp_path)
    rendered = renderer.render(EVENTS["order-release"], {"customer_name": "a", "order_number": "9"})
    assert rendered.subject == "Released: 9 for ACME Ltd"
    assert "released for fulfilment" in rendered.text


def test_custom_template_with_an_undefined_variable_is_an_error_not_blank(tmp_path: Path) -> None:
    (tmp_path / "order-release").mkdir()
    (tmp_path / "order-release" / "body.txt").write_text("Hi {{ customer_nam }}")
    with pytest.raises(ConfigError, match="'customer_nam' is undefined"):
        Renderer(PROFILE, tmp_path).render(EVENTS["order-release"], {"customer_name": "a", "order_number": "9"})


def test_template_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "order-release").mkdir()
    (tmp_path / "order-release" / "body.html").write_text("<p>\n{% if %}</p>")
    with pytest.raises(ConfigError, match=r"body.html:2: template syntax error"):
        Renderer(PROFILE, tmp_path).render(EVENTS["order-release"], {"customer_name": "a", "order_number": "9"})


def test_money_uses_the_profile_currency_and_leaves_text_alone() -> None:
    assert format_money("1234.5", "USD") == "USD 1,234.50"
    assert format_money("1,000.5", None) == "1,000.50"
    assert format_money("see invoice", "USD") == "see invoice"



@pytest.mark.parametrize(("raw", "shown"), [
    ("1.234,50", "EUR 1,234.50"), ("12,5", "EUR 12.50"), ("1,234", "EUR 1,234"), ("1.234", "EUR 1.234"),
    ("1.234.567", "EUR 1,234,567.00"), ("1,234,567", "EUR 1,234,567.00"), ("1.0050", "EUR 1.01"),
    ("2 500,00", "EUR 2,500.00"), ("NaN", "NaN"), ("-3", "EUR -3.00"),
])
def test_money_understands_decimal_commas_and_rounds_half_up(raw: str, shown: str) -> None:
    assert format_money(raw, "EUR") == shown


def test_absent_optional_variables_render_as_nothing_not_none(tmp_path: Path) -> None:
    (tmp_path / "overdue-invoice").mkdir()
    (tmp_path / "overdue-invoice" / "body.txt").write_text("[{{ days_overdue }}][{{ signature }}]")
    profile = smtp_profile(name="p", email="a@b.test", host="h", port=25)
    rendered = Renderer(profile, tmp_path).render(EVENTS["overdue-invoice"], sample_variables(
        EVENTS["overdue-invoice"]) | {"days_overdue": ""})
    assert rendered.text == "[][]"


def test_reply_to_override_is_what_templates_see(tmp_path: Path) -> None:
    (tmp_path / "order-release").mkdir()
    (tmp_path / "order-release" / "body.txt").write_text("Reply to {{ reply_to }}")
    envelope, rendered = compose(PROFILE, Renderer(PROFILE, tmp_path), EVENTS["order-release"],
                                 Recipients(("c@x.test",)), {"customer_name": "a", "order_number": "1"},
                                 reply_to="desk@company.test")
    assert rendered.text == "Reply to desk@company.test"
    assert b"Reply-To: desk@company.test" in envelope.data


@pytest.mark.parametrize(("subject", "body", "message"), [
    ("{{ order_number | nosuchfilter }}", None, "No filter named 'nosuchfilter'"),
    (None, "{{ 1 / 0 }}", "ZeroDivisionError"),
    ("\udcff", None, None),
])
def test_broken_custom_templates_are_config_errors_naming_the_file(
        tmp_path: Path, subject: str | None, body: str | None, message: str | None) -> None:
    folder = tmp_path / "order-release"
    folder.mkdir()
    if subject == "\udcff":
        (folder / "subject.txt").write_bytes(b"\xff\xfe not utf-8")
    elif subject is not None:
        (folder / "subject.txt").write_text(subject)
    if body is not None:
        (folder / "body.txt").write_text(body)
    renderer = Renderer(PROFILE, tmp_path)
    step = renderer.subject_variables if body is None else (
        lambda event: renderer.render(event, {"customer_name": "a", "order_number": "1"}))
    with pytest.raises(ConfigError) as caught:
        step(EVENTS["order-release"])
    assert message is None or message in caught.value.message
