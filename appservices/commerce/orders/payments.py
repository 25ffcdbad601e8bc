"""Payment methods: a small registry of classes, so a payment processor can be added
without touching orders.

Each method says how the buyer pays (the instructions on the order card), what marks
the order paid, whether the order waits for payment before it ships, and which settings
a shop gives it (bank details, a checkout link). Orders know methods only through
`PaymentMethod`; a new one is a subclass registered with `@register` (docs/orders.md).
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from appservices.commerce import links
from appservices.commerce.errors import InvalidInput
from mercato.values import plain_text


@dataclass(frozen=True)
class Payable:
    """What a method knows of the order it is paid for."""

    order_id: str
    shop_slug: str
    shop_name: str
    total: str  # "24.90"
    currency: str
    delivery_kind: str


class PaymentMethod:
    """One way to pay. Subclasses set the class attributes and may override the rest."""

    name: ClassVar[str]
    label: ClassVar[str]  # as the buyer reads it
    marks_paid: ClassVar[str]  # what marks the order paid, for the shop's staff and the docs
    paid_before_shipping: ClassVar[bool] = False
    delivery_kinds: ClassVar[tuple[str, ...]] = ("shipping", "pickup", "none")

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings

    @classmethod
    def check_settings(cls, value: Any, policy: links.LinkPolicy) -> dict[str, Any]:
        """The shop's settings for this method, checked (none by default)."""
        if value not in (None, {}, True):
            raise InvalidInput(f"payment_methods.{cls.name}", "takes no settings; send {}")
        return {}

    def reference(self, payable: Payable) -> str:
        """What the buyer quotes when paying ('' if nothing)."""
        return ""

    def instructions(self, payable: Payable, reference: str) -> str:
        raise NotImplementedError


REGISTRY: dict[str, type[PaymentMethod]] = {}


def register(method: type[PaymentMethod]) -> type[PaymentMethod]:
    REGISTRY[method.name] = method
    return method


@register
class OnDelivery(PaymentMethod):
    name = "on_delivery"
    label = "Pay on delivery"
    marks_paid = "the shop marks it paid, or delivered (the courier took the payment)"
    delivery_kinds = ("shipping",)

    def instructions(self, payable: Payable, reference: str) -> str:
        return f"Pay {payable.total} {payable.currency} to the courier when the parcel arrives."


@register
class Pickup(PaymentMethod):
    name = "pickup"
    label = "Pay at pickup"
    marks_paid = "the shop marks it paid, or delivered (collected and paid in the shop)"
    delivery_kinds = ("pickup",)

    def instructions(self, payable: Payable, reference: str) -> str:
        return (f"Pay {payable.total} {payable.currency} when you collect order "
                f"{payable.order_id} at {payable.shop_name}.")


@register
class BankTransfer(PaymentMethod):
    name = "bank_transfer"
    label = "Bank transfer"
    marks_paid = "the shop (or its back-end, through the API) when the transfer arrives"
    paid_before_shipping = True

    @classmethod
    def check_settings(cls, value: Any, policy: links.LinkPolicy) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise InvalidInput("payment_methods.bank_transfer",
                               'needs {"details": "IBAN …, BIC …, account holder"}')
        details = plain_text("payment_methods.bank_transfer.details", value.get("details"),
                             500, required=True)
        links.check_links([details], policy)
        return {"details": details}

    def reference(self, payable: Payable) -> str:
        # The order ID is unique: quoted with the shop's name it finds the order at once.
        return f"{payable.shop_slug[:12].upper()}-{payable.order_id}"

    def instructions(self, payable: Payable, reference: str) -> str:
        return (f"Transfer {payable.total} {payable.currency} to {self.settings['details']} "
                f"with the reference {reference}. The order ships once the payment arrives.")


@register
class PaymentLink(PaymentMethod):
    name = "payment_link"
    label = "Pay online"
    marks_paid = "the shop's back-end, through the API, when its checkout is paid"
    paid_before_shipping = True

    @classmethod
    def check_settings(cls, value: Any, policy: links.LinkPolicy) -> dict[str, Any]:
        field = "payment_methods.payment_link.template"
        template = value.get("template") if isinstance(value, dict) else None
        if not isinstance(template, str) or "{order_id}" not in template:
            raise InvalidInput(field, "must be your checkout address with {order_id} in it, "
                                      "like https://shop.example/pay?order={order_id}")
        sample = fill_template(template, Payable("A7K3Q9", "shop", "Shop", "1.00", "EUR",
                                                 "shipping"))
        url = links.clean_https_url(field, sample, 500)
        links.check_links([url], policy)
        return {"template": template}

    def instructions(self, payable: Payable, reference: str) -> str:
        url = fill_template(self.settings["template"], payable)
        return f"Pay {payable.total} {payable.currency} online: {url}"


def fill_template(template: str, payable: Payable) -> str:
    """The shop's checkout address for this order: {order_id}, {total}, {currency}."""
    return (template.replace("{order_id}", payable.order_id)
            .replace("{total}", payable.total).replace("{currency}", payable.currency))


def method(name: str, settings: dict[str, Any]) -> PaymentMethod:
    return REGISTRY[name](settings)


def check_methods(value: Any, policy: links.LinkPolicy) -> dict[str, dict[str, Any]]:
    """The methods a shop offers, each with its checked settings."""
    names = ", ".join(REGISTRY)
    if not isinstance(value, dict) or not value:
        raise InvalidInput("payment_methods", f'name the methods you offer, like '
                                              f'{{"on_delivery": {{}}}}; there are: {names}')
    offered: dict[str, dict[str, Any]] = {}
    for name, settings in value.items():
        if name not in REGISTRY:
            raise InvalidInput("payment_methods", f"'{name}' is not a payment method; use "
                                                  f"{names}")
        offered[name] = REGISTRY[name].check_settings(settings, policy)
    return offered


def choose(value: Any, offered: dict[str, dict[str, Any]], delivery_kind: str) -> PaymentMethod:
    """The buyer's choice among the shop's methods, fitting the delivery."""
    if not isinstance(value, str) or value not in offered:
        raise InvalidInput("payment", f"this shop takes: {', '.join(offered)}")
    chosen = method(value, offered[value])
    if delivery_kind not in chosen.delivery_kinds:
        fits = [n for n in offered if delivery_kind in REGISTRY[n].delivery_kinds]
        other = " or ".join(fits) or "another delivery"
        raise InvalidInput("payment", f"{chosen.label.lower()} does not go with "
                                      f"{delivery_kind}; choose {other}")
    return chosen


def public_view(offered: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """What a buyer is shown of the methods at checkout."""
    return [{"method": name, "label": REGISTRY[name].label,
             "delivery": list(REGISTRY[name].delivery_kinds)} for name in offered]
