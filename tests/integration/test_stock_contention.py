"""Scarce stock under concurrency: never oversold, whatever the number of orders and allocation instances."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from deploy.local import processes
from shared.backbone.settings import development_password
from tests.factories import order_document
from tests.local import LOCAL
from tests.scenario import new_skus, seed
from tests.waiting import eventually


async def test_100_concurrent_orders_for_30_units_reserve_exactly_30_across_two_allocation_instances(
    http, db, pipeline
) -> None:
    # given 30 units of one SKU and a second allocation instance sharing the work
    (sku,) = new_skus(1)
    second = processes.Process(
        LOCAL, "allocation-2", "services.allocation", LOCAL.ports.http["allocation"] + 10, env={"OMS_INSTANCE": "2"}
    )
    second.start()
    try:
        second.wait_ready()
        await seed([("ams", sku, 30)])

        # when 100 customers order one unit each at the same time
        responses = await asyncio.gather(
            *(http.post("/v1/orders", json=order_document([(sku, 1)])) for _ in range(100))
        )
        assert {r.status_code for r in responses} == {202}
        order_ids = [uuid.UUID(r.json()["order_id"]) for r in responses]

        # then every order is either allocated or waiting for stock, with the reason
        decided = await eventually(
            lambda: db.fetch(
                "SELECT status, reason FROM allocation.orders WHERE order_id = ANY($1::uuid[])", order_ids
            ),
            lambda rows: len(rows) == 100,
            timeout=60,
        )
    finally:
        second.stop()
    statuses = [r["status"] for r in decided]
    assert statuses.count("allocated") == 30
    assert statuses.count("backordered") == 70
    assert {r["reason"] for r in decided if r["status"] == "backordered"} == {f"waiting for stock: {sku} short by 1"}

    # and exactly 30 units were ever reserved; stock never went negative or below what is reserved
    assert await db.fetchval("SELECT sum(quantity) FROM allocation.reservations WHERE sku = $1", sku) == 30
    stock = await db.fetchrow(
        "SELECT on_hand, reserved FROM allocation.stock WHERE warehouse_id = 'ams' AND sku = $1", sku
    )
    shipped = await db.fetchval(
        "SELECT coalesce(sum(quantity), 0) FROM allocation.reservations WHERE sku = $1 AND status = 'shipped'", sku
    )
    assert stock["on_hand"] + shipped == 30
    assert stock["reserved"] + shipped == 30
    assert 0 <= stock["reserved"] <= stock["on_hand"]


@pytest.fixture
async def as_allocation(db) -> AsyncIterator[asyncpg.Connection]:
    """A connection with allocation's own role: what its code may do, the database still checks."""
    conn = await asyncpg.connect(
        f"postgresql://allocation@127.0.0.1:{LOCAL.ports.postgres}/oms", password=development_password("allocation")
    )
    yield conn
    await conn.close()


async def test_the_database_itself_refuses_to_reserve_more_than_is_on_hand(as_allocation) -> None:
    (sku,) = new_skus(1)
    conn = as_allocation
    await conn.execute("INSERT INTO allocation.stock (warehouse_id, sku, on_hand) VALUES ('ams', $1, 2)", sku)
    with pytest.raises(asyncpg.CheckViolationError, match="stock_not_oversold"):
        await conn.execute("UPDATE allocation.stock SET reserved = 3 WHERE sku = $1", sku)


async def test_the_database_refuses_to_commit_a_reservation_count_the_reservations_do_not_explain(
    as_allocation,
) -> None:
    (sku,) = new_skus(1)
    conn = as_allocation
    await conn.execute("INSERT INTO allocation.stock (warehouse_id, sku, on_hand) VALUES ('ams', $1, 5)", sku)
    # reserved without any open reservation behind it: checked at commit
    with pytest.raises(asyncpg.CheckViolationError, match="reserves 2 units but its open reservations hold 0"):
        async with conn.transaction():
            await conn.execute("UPDATE allocation.stock SET reserved = 2 WHERE sku = $1", sku)
    assert await conn.fetchval("SELECT reserved FROM allocation.stock WHERE sku = $1", sku) == 0


async def test_the_check_at_commit_is_made_for_every_stock_row_however_many_rows_of_a_transaction_name_it(
    as_allocation,
) -> None:
    # given two SKUs on hand, and an order to hold them for
    first, second = new_skus(2)
    conn = as_allocation
    order_id = await two_skus_and_an_order(conn, first, second, on_hand=5)

    async def hold(sku: str, units: int) -> None:
        await conn.execute(
            "INSERT INTO allocation.reservations (shipment_id, sku, order_id, warehouse_id, quantity)"
            " VALUES ($1, $2, $3, 'ams', $4)",
            uuid.uuid4(),
            sku,
            order_id,
            units,
        )

    # when one transaction writes three matching rows for the first SKU, then a count for the second that its
    # reservations do not explain: the check must not stop at the SKU it has seen
    with pytest.raises(asyncpg.CheckViolationError, match=f"ams/{second} reserves 2 units but its open reservations"):
        async with conn.transaction():
            for _ in range(3):
                await hold(first, 1)
            await conn.execute("UPDATE allocation.stock SET reserved = 3 WHERE sku = $1", first)
            await hold(second, 1)
            await conn.execute("UPDATE allocation.stock SET reserved = 2 WHERE sku = $1", second)

    # and when a stock row checked early (constraints set immediate) is changed again before commit, the commit
    # checks it again
    with pytest.raises(asyncpg.CheckViolationError, match=f"ams/{first} reserves 4 units but its open reservations"):
        async with conn.transaction():
            await hold(first, 1)
            await conn.execute("UPDATE allocation.stock SET reserved = 1 WHERE sku = $1", first)
            await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
            await conn.execute("SET CONSTRAINTS ALL DEFERRED")
            await conn.execute("UPDATE allocation.stock SET reserved = 4 WHERE sku = $1", first)
    assert await conn.fetchval("SELECT reserved FROM allocation.stock WHERE sku = $1", first) == 0


async def test_what_open_reservations_hold_is_kept_from_the_reservation_rows_whatever_changes_them(
    as_allocation,
) -> None:
    # given two SKUs on hand and an order to hold them for
    first, second = new_skus(2)
    conn = as_allocation
    order_id = await two_skus_and_an_order(conn, first, second, on_hand=9)
    big, small, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    async def change(statement: str, *args: object, reserved: tuple[int, int]) -> dict[str, int]:
        """The statement with the stock rows set to what it should leave reserved, in one transaction (the check at
        commit compares them with the totals); then the totals, each checked against a sum of the rows."""
        async with conn.transaction():
            await conn.execute(statement, *args)
            await conn.execute(
                "UPDATE allocation.stock SET reserved = CASE sku WHEN $1 THEN $3::int ELSE $4::int END"
                " WHERE warehouse_id = 'ams' AND sku IN ($1, $2)",
                first,
                second,
                *reserved,
            )
        totals = dict(
            await conn.fetch("SELECT sku, held FROM allocation.reservation_totals WHERE sku IN ($1, $2)", first, second)
        )
        summed = dict(
            await conn.fetch(
                "SELECT sku, sum(quantity - short) FROM allocation.reservations"
                " WHERE status = 'open' AND sku IN ($1, $2) GROUP BY sku",
                first,
                second,
            )
        )
        assert {sku: units for sku, units in totals.items() if units} == summed
        return {sku: totals.get(sku, 0) for sku in (first, second)}

    # when reservations are added in one statement, one is found short, one ships, one moves to another SKU and one
    # is removed, then the totals follow each change
    assert await change(
        "INSERT INTO allocation.reservations (shipment_id, sku, order_id, warehouse_id, quantity) VALUES"
        " ($1, $4, $5, 'ams', 4), ($2, $4, $5, 'ams', 1), ($3, $6, $5, 'ams', 3)",
        big,
        small,
        other,
        first,
        order_id,
        second,
        reserved=(5, 3),
    ) == {first: 5, second: 3}
    assert await change(
        "UPDATE allocation.reservations SET short = 1 WHERE shipment_id = $1", big, reserved=(4, 3)
    ) == {first: 4, second: 3}
    assert await change(
        "UPDATE allocation.reservations SET status = 'shipped' WHERE shipment_id = $1", other, reserved=(4, 0)
    ) == {first: 4, second: 0}
    assert await change(
        "UPDATE allocation.reservations SET sku = $2 WHERE shipment_id = $1", small, second, reserved=(3, 1)
    ) == {first: 3, second: 1}
    assert await change("DELETE FROM allocation.reservations WHERE shipment_id = $1", small, reserved=(3, 0)) == {
        first: 3,
        second: 0,
    }

    # and a count the totals do not explain is still refused at commit
    with pytest.raises(
        asyncpg.CheckViolationError, match=f"ams/{first} reserves 4 units but its open reservations hold 3"
    ):
        async with conn.transaction():
            await conn.execute("UPDATE allocation.stock SET reserved = 4 WHERE sku = $1", first)


async def two_skus_and_an_order(conn: asyncpg.Connection, first: str, second: str, on_hand: int) -> uuid.UUID:
    """Stock of two SKUs at one warehouse, and an order that reservations of them can name; the order's id."""
    order_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO allocation.stock (warehouse_id, sku, on_hand) VALUES ('ams', $1, $3), ('ams', $2, $3)",
        first,
        second,
        on_hand,
    )
    await conn.execute(
        "INSERT INTO allocation.orders (order_id, channel, backorder_policy, status, lines, skus, ship_to,"
        " service_level, arrived_at) VALUES ($1, 'web', 'reject', 'allocated', '{}', '{}', '{}', 'standard', now())",
        order_id,
    )
    return order_id
