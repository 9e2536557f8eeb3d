"""The event catalogue: the ERP's system emails, their variables, and what makes each one unique."""

from __future__ import annotations

from dataclasses import dataclass

from xoromail_cli.errors import UsageError


@dataclass(frozen=True)
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
        Event("overdue-invoice", "Auto email reminder for overdue invoices",
              "Reminds a customer that an invoice is past its due date.",
              ("customer_name", "invoice_number", "amount_due", "due_date"),
              ("payment_link", "days_overdue"), ("invoice_number",)),
        Event("so-allocation", "Confirmation on SO allocation",
              "Tells a customer that stock has been allocated to their sales order.",
              ("customer_name", "order_number"), ("expected_ship_date",), ("order_number",)),
        Event("ship-confirmation", "Ship confirmation on Pack & Ship",
              "Tells a customer that their order has shipped, with tracking.",
              ("customer_name", "order_number", "carrier", "tracking_number"), ("tracking_url",),
              ("order_number", "tracking_number")),
        Event("bill-payment", "Confirmation on bill payment",
              "Confirms to a vendor that a bill has been paid.",
              ("vendor_name", "bill_number", "amount_paid", "payment_date"), ("payment_reference",),
              ("bill_number",)),
        Event("order-release", "Confirmation on order release",
              "Tells a customer that their order has been released for fulfilment.",
              ("customer_name", "order_number"), (), ("order_number",)),
        Event("packing-slip", "Packing slip along with invoice",
              "Sends the packing slip and invoice for a shipped order (attachments required).",
              ("customer_name", "order_number", "invoice_number"), (), ("order_number", "invoice_number"),
              needs_attachment=True),
        Event("goods-received", "Notification for goods received",
              "Tells a vendor that the goods on a purchase order were received.",
              ("vendor_name", "po_number", "received_date"), ("notes",), ("po_number",)),
        Event("deposit-link", "Deposit payment link",
              "Asks a customer to pay the deposit for an order, with a payment link.",
              ("customer_name", "order_number", "amount", "payment_link"), ("due_date",), ("order_number",)),
        Event("invoice-payment-link", "Invoice payment link",
              "Sends a customer a link to pay an invoice.",
              ("customer_name", "invoice_number", "amount_due", "payment_link"), ("due_date",),
              ("invoice_number",)),
    )
}

PROFILE_VARIABLES = ("company_name", "sender_name", "sender_email", "reply_to", "signature", "currency")
"""Filled from the profile for every template; a message's own variables may not override them."""


def get_event(name: str) -> Event:
    try:
        return EVENTS[name]
    except KeyError:
        raise UsageError(f"unknown event {name!r}", f"events: {', '.join(EVENTS)}") from None
