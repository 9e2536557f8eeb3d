"""The event catalogue: the ERP's system emails, their variables, and what makes each one unique."""

from __future__ import annotations

from dataclasses import dataclass

from xoromail_cli.errors import UsageError


@dataclass(frozen=True, kw_only=True)
class Event:
    name: str
    erp_name: str
    purpose: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    natural_key: tuple[str, ...] = ()
    needs_attachment: bool = False

    @property
    def variables(self) -> tuple[str, ...]:
        return self.required + self.optional


EVENTS: dict[str, Event] = {
    e.name: e
    for e in (
        Event(name="overdue-invoice", erp_name="Auto email reminder for overdue invoices",
              purpose="Reminds a customer that an invoice is past its due date.",
              required=("customer_name", "invoice_number", "amount_due", "due_date"),
              optional=("payment_link", "days_overdue"), natural_key=("invoice_number",)),
        Event(name="so-allocation", erp_name="Confirmation on SO allocation",
              purpose="Tells a customer that stock has been allocated to their sales order.",
              required=("customer_name", "order_number"), optional=("expected_ship_date",),
              natural_key=("order_number",)),
        Event(name="ship-confirmation", erp_name="Ship confirmation on Pack & Ship",
              purpose="Tells a customer that their order has shipped, with tracking.",
              required=("customer_name", "order_number", "carrier", "tracking_number"), optional=("tracking_url",),
              natural_key=("order_number", "tracking_number")),
        Event(name="bill-payment", erp_name="Confirmation on bill payment",
              purpose="Confirms to a vendor that a bill has been paid.",
              required=("vendor_name", "bill_number", "amount_paid", "payment_date"), optional=("payment_reference",),
              natural_key=("bill_number",)),
        Event(name="order-release", erp_name="Confirmation on order release",
              purpose="Tells a customer that their order has been released for fulfilment.",
              required=("customer_name", "order_number"), optional=(), natural_key=("order_number",)),
        Event(name="packing-slip", erp_name="Packing slip along with invoice",
              purpose="Sends the packing slip and invoice for a shipped order (attachments required).",
              required=("customer_name", "order_number", "invoice_number"), optional=(),
              natural_key=("order_number", "invoice_number"),
              needs_attachment=True),
        Event(name="goods-received", erp_name="Notification for goods received",
              purpose="Tells a vendor that the goods on a purchase order were received.",
              required=("vendor_name", "po_number", "received_date"), optional=("notes",), natural_key=("po_number",)),
        Event(name="deposit-link", erp_name="Deposit payment link",
              purpose="Asks a customer to pay the deposit for an order, with a payment link.",
              required=("customer_name", "order_number", "amount", "payment_link"), optional=("due_date",),
              natural_key=("order_number",)),
        Event(name="invoice-payment-link", erp_name="Invoice payment link",
              purpose="Sends a customer a link to pay an invoice.",
              required=("customer_name", "invoice_number", "amount_due", "payment_link"), optional=("due_date",),
              natural_key=("invoice_number",)),
    )
}

PROFILE_VARIABLES = ("company_name", "sender_name", "sender_email", "reply_to", "signature", "currency")
"""Filled from the profile for every template; a message's own variables may not override them."""


def get_event(name: str) -> Event:
    try:
        return EVENTS[name]
    except KeyError:
        raise UsageError(f"unknown event {name!r}", f"events: {', '.join(EVENTS)}") from None
