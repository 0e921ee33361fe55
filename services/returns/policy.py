"""The returns policy as configured (deploy/config/returns.json, OMS_RETURNS_POLICY_FILE): the reason-code tree,
the return windows per channel and product category, what cannot be returned, when an operator decides, where
parcels go back to and how long an RMA stays open. Plain validated data: the settings read the file."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reason(Rule):
    """A node of the reason tree. Leaves are what a customer picks; a leaf inherits what its parents say."""

    label: str
    refund_shipping: bool | None = None
    review: bool | None = None
    restocking_fee_percent: Decimal | None = Field(default=None, ge=0, le=100)
    children: dict[str, Reason] = {}


class ReasonRule(Rule):
    """What one leaf code means for the decision and the refund, its ancestors' settings filled in."""

    code: str
    label: str
    refund_shipping: bool = False
    review: bool = False
    restocking_fee_percent: Decimal = Decimal(0)


class Window(Rule):
    """Days from delivery a return may be asked for, for a channel, a category, both, or neither (the default)."""

    days: int = Field(ge=0, le=3650)
    channel: str | None = None
    category: str | None = None

    @property
    def specificity(self) -> int:
        return 2 * (self.category is not None) + (self.channel is not None)


class NonReturnable(Rule):
    categories: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()


class ReturnsPolicy(Rule):
    reasons: dict[str, Reason]
    windows: tuple[Window, ...]
    non_returnable: NonReturnable = NonReturnable()
    # Requests for more units than this go to an operator.
    review_above_units: int = Field(default=20, ge=1)
    # shipping: the warehouse that shipped most of the returned units; nearest: one in the customer's country
    # when there is one, else the shipping warehouse.
    receiving_warehouse: Literal["shipping", "nearest"] = "shipping"
    rma_valid_days: int = Field(default=30, ge=1, le=365)

    @model_validator(mode="after")
    def _default_window(self) -> ReturnsPolicy:
        if not any(w.channel is None and w.category is None for w in self.windows):
            raise ValueError("windows: one window names neither channel nor category (the default)")
        return self

    def leaves(self) -> dict[str, ReasonRule]:
        """Every code a customer may give (`parent.child`), with what it means."""
        found: dict[str, ReasonRule] = {}

        def walk(prefix: str, nodes: dict[str, Reason], inherited: ReasonRule) -> None:
            for name, node in nodes.items():
                code = f"{prefix}{name}"
                rule = ReasonRule(
                    code=code,
                    label=node.label,
                    refund_shipping=inherited.refund_shipping if node.refund_shipping is None else node.refund_shipping,
                    review=inherited.review if node.review is None else node.review,
                    restocking_fee_percent=inherited.restocking_fee_percent
                    if node.restocking_fee_percent is None
                    else node.restocking_fee_percent,
                )
                if node.children:
                    walk(f"{code}.", node.children, rule)
                else:
                    found[code] = rule

        walk("", self.reasons, ReasonRule(code="", label=""))
        return found

    def window_days(self, channel: str, category: str | None) -> int:
        """The most specific window that fits: channel and category, then category, then channel, then default."""
        fitting = [
            w for w in self.windows if w.channel in (None, channel) and (w.category is None or w.category == category)
        ]
        return max(fitting, key=lambda w: w.specificity).days
