"""The KPI report's declared shape (services/kpis/answers.py) is the one GET /v1/kpis really answers: every key, with
the type it has on the wire, for the whole period and per channel, with orders of every kind and with none. The
API's fuzz test checks the live answers against it; this finds a figure added to the report but not to the
document without a stack."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ValidationError
from schemathesis.core.failures import FailureGroup

from services.kpis import answers, domain, repository
from services.kpis.api import kpis_api
from services.kpis.costs import CostModel
from services.kpis.domain import OrderFacts
from services.kpis.reports import Reporting
from services.kpis.settings import KpiSettings
from shared.backbone.auth import operator
from tests.unit import declared_answers
from tests.unit.declared_answers import NO_DATABASE
from tests.unit.test_kpis_domain import PLACED, RULES, delivered

SINCE, UNTIL = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)


def order(**kw: Any) -> OrderFacts:
    """A delivered order as the KPI domain's tests make them, priced."""
    return delivered(**{"cost": Decimal("4.90"), **kw})


# Orders of every kind: perfect, late, short, returned damaged, held then released, still on hold, cancelled,
# backordered, unfulfillable, unpriced, changed with money back in two currencies; on two channels.
ORDERS = [
    order(),
    order(channel="pos", delivered_at=PLACED + timedelta(days=5), cost=Decimal("7.15")),
    order(first_reserved={"A": 1}, units_shipped=1, damaged=True, returned=True, document_exception=True),
    order(held_at=PLACED, hold_ended_at=PLACED + timedelta(hours=2)),
    order(channel="pos", held_at=PLACED, ready_at=None, delivered_at=None, units_shipped=0, cost=None),
    order(cancelled=True, ready_at=None, delivered_at=None, units_shipped=0, cost=None),
    order(first_outcome=domain.BACKORDERED, first_reserved={}, ready_at=None, delivered_at=None, units_shipped=0),
    order(first_outcome=domain.UNFULFILLABLE, first_reserved={}, ready_at=None, delivered_at=None, units_shipped=0),
    order(channel="pos", first_outcome=None, cost=None),
    order(
        changes_requested=2,
        changes_applied=1,
        changes_refused=1,
        changed_to={"A": 1},
        due_back={"EUR": Decimal("20"), "GBP": Decimal("5.5")},
        refunded={"EUR": Decimal("20.00")},
    ),
]
REJECTED = {"web": 2, "marketplace": 1}  # a channel with orders refused only


@dataclass(frozen=True)
class Facts(Reporting):
    """The report as Reporting.report builds it, over these facts rather than the database's."""

    orders: tuple[OrderFacts, ...] = ()

    async def facts(
        self, conn: Any, since: datetime, until: datetime, only: Collection[UUID] | None = None
    ) -> list[OrderFacts]:
        return list(self.orders)


def app(orders: list[OrderFacts]) -> FastAPI:
    reporting = Facts(RULES, KpiSettings().shipping_rules(), CostModel(currency="EUR"), tuple(orders))
    api = FastAPI()
    api.include_router(kpis_api(NO_DATABASE, reporting))
    api.dependency_overrides[operator] = lambda: None  # any caller is an operator here
    return api


async def on_the_wire(
    monkeypatch: pytest.MonkeyPatch, orders: list[OrderFacts], rejected: Mapping[str, int], by: str | None
) -> httpx.Response:
    """The endpoint's answer as it goes out: serialised by FastAPI itself."""

    async def rejections(conn: Any, since: datetime, until: datetime) -> dict[str, int]:
        return dict(rejected)

    monkeypatch.setattr(repository, "rejections", rejections)
    params = {"since": SINCE.isoformat(), "until": UNTIL.isoformat(), **({"by": by} if by else {})}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app(orders)), base_url="http://oms") as client:
        answer = await client.get("/v1/kpis", params=params)
    assert answer.status_code == 200, answer.text
    return answer


def conforms(answer: httpx.Response) -> None:
    """The fuzz test's check of an answer against the document (schemathesis' response_schema_conformance)."""
    declared_answers.conforms(app([]), "/v1/kpis", answer)


def answer_of(report: dict[str, Any]) -> httpx.Response:
    answer = httpx.Response(200, json=report, request=httpx.Request("GET", "http://oms/v1/kpis"))
    answer.elapsed = timedelta(0)  # as a client would have timed it
    return answer


CASES = [
    pytest.param(ORDERS, REJECTED, None, id="all-orders"),
    pytest.param(ORDERS, REJECTED, "channel", id="by-channel"),
    pytest.param([], {}, None, id="none"),
    pytest.param([], {}, "channel", id="none-by-channel"),
    pytest.param([], {"web": 3}, "channel", id="rejected-only-by-channel"),
    pytest.param([], {"web": 3}, None, id="rejected-only"),
]


@pytest.mark.parametrize(("orders", "rejected", "by"), CASES)
async def test_every_answer_has_the_declared_shape(
    monkeypatch: pytest.MonkeyPatch, orders: list[OrderFacts], rejected: Mapping[str, int], by: str | None
) -> None:
    # given the report as the endpoint sends it, and as FastAPI's jsonable_encoder would send it
    answer = await on_the_wire(monkeypatch, orders, rejected, by)
    groups = domain.grouped(orders, RULES, (lambda o: o.channel) if by else None, rejected)
    built = {"since": SINCE.isoformat(), "until": UNTIL.isoformat(), "by": by, "currency": "EUR", "groups": groups}
    encoded = json.loads(json.dumps(jsonable_encoder(built)))
    # then both are the same and fit the model and the document's 200, which refuses any key it does not declare
    assert answer.json() == encoded
    answers.KpiReport.model_validate_json(answer.content)
    answers.KpiReport.model_validate(encoded)
    conforms(answer)


async def test_the_cases_reach_every_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    # nulls only where nothing is counted: a report of every kind of order fills every figure in
    report = (await on_the_wire(monkeypatch, ORDERS, REJECTED, None)).json()
    whole = report["groups"][0]

    def nulls(value: Any, path: str) -> list[str]:
        if isinstance(value, dict):
            return [n for k, v in value.items() for n in nulls(v, f"{path}.{k}")]
        return [path] if value is None else []

    assert nulls(whole, "") == []
    assert whole["changes"]["due_back"] == {"EUR": "20.00", "GBP": "5.50"}
    assert [g["group"] for g in (await on_the_wire(monkeypatch, ORDERS, REJECTED, "channel")).json()["groups"]] == [
        "marketplace",
        "pos",
        "web",
    ]


def test_the_document_declares_the_report_as_the_200() -> None:
    answered = app([]).openapi()["paths"]["/v1/kpis"]["get"]["responses"]["200"]
    assert answered["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/KpiReport"


def models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """The model and every model under it."""
    found = [model]
    for declared in model.model_fields.values():
        for kind in (declared.annotation, *getattr(declared.annotation, "__args__", ())):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                found += models(kind)
    return found


def test_every_key_is_declared_and_required() -> None:
    # an undocumented key is refused, and no declared key may be missing: the fuzz test relies on both
    nested = models(answers.KpiReport)
    assert {m.__name__ for m in nested} >= {"KpiGroup", "PerfectOrderComponents", "Durations", "CostPerOrder"}
    for model in nested:
        assert model.model_config.get("extra") == "forbid", model.__name__
        assert all(f.is_required() for f in model.model_fields.values()), model.__name__
    groups = domain.grouped(ORDERS, RULES)
    report = {"since": SINCE.isoformat(), "until": UNTIL.isoformat(), "by": None, "currency": "EUR", "groups": groups}
    answers.KpiReport.model_validate(jsonable_encoder(report))
    groups[0]["cost_per_order"]["median"] = "4.90"
    with pytest.raises(ValidationError, match="median"):
        answers.KpiReport.model_validate(jsonable_encoder(report))
    with pytest.raises(FailureGroup) as refused:
        conforms(answer_of(jsonable_encoder(report)))
    assert "median" in str(refused.value.exceptions[0])
