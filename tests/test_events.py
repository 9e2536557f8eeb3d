from __future__ import annotations

import pytest

from xoromail_cli.compose.events import EVENTS, get_event
from xoromail_cli.compose.render import BUILTIN_TEMPLATES, TEMPLATE_FILES
from xoromail_cli.errors import UsageError


def test_every_erp_email_is_in_the_catalogue_with_templates() -> None:
    assert list(EVENTS) == ["overdue-invoice", "so-allocation", "ship-confirmation", "bill-payment",
                            "order-release", "packing-slip", "goods-received", "deposit-link",
                            "invoice-payment-link"]
    for name, event in EVENTS.items():
        assert event.natural_key and set(event.natural_key) <= set(event.required)
        for filename in TEMPLATE_FILES:
            assert (BUILTIN_TEMPLATES / name / filename).is_file()


def test_unknown_event_is_a_usage_error_listing_the_events() -> None:
    with pytest.raises(UsageError) as caught:
        get_event("invoice")
    assert "overdue-invoice" in (caught.value.hint or "")
