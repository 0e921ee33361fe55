-- The ledger check of 001 and 007 summed a (warehouse, sku)'s open reservations at every commit that touched it. While
-- what follows the order path waits at a peak nothing ships, open reservations pile up, and the sum grew with them:
-- at 600 orders/s it took 196 µs a check against 44 at 200/s, and was allocation's costliest statement
-- (docs/benchmarks/findings.md, round 18). What the open reservations hold is now kept per (warehouse, sku) by the
-- database itself, from each statement's changed reservation rows, and the check compares the stock row with it. The
-- guard is the same: the totals come from the reservation rows, never from what the service computed.
LOCK TABLE reservations IN SHARE ROW EXCLUSIVE MODE;  -- no reservation changes between the totals and their triggers

CREATE TABLE reservation_totals (
    warehouse_id text NOT NULL,
    sku          text NOT NULL,
    held         integer NOT NULL,  -- units of the open reservations (quantity less short)
    PRIMARY KEY (warehouse_id, sku)
);
INSERT INTO reservation_totals (warehouse_id, sku, held)
SELECT warehouse_id, sku, sum(quantity - short) FROM reservations WHERE status = 'open' GROUP BY warehouse_id, sku;

-- Statement-level triggers with transition tables: one upsert a statement, in (warehouse, sku) order as the stock
-- rows are locked. A trigger with transition tables names one event, hence three triggers.
-- Rows inserted or deleted: the same upsert, added or taken away.
CREATE FUNCTION total_added_or_removed_reservations() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO reservation_totals (warehouse_id, sku, held)
    SELECT warehouse_id, sku, sum(quantity - short) * CASE TG_OP WHEN 'DELETE' THEN -1 ELSE 1 END
    FROM moved WHERE status = 'open'
    GROUP BY warehouse_id, sku ORDER BY warehouse_id, sku
    ON CONFLICT (warehouse_id, sku) DO UPDATE SET held = reservation_totals.held + excluded.held;
    RETURN NULL;
END $$;

CREATE FUNCTION total_changed_reservations() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO reservation_totals (warehouse_id, sku, held)
    SELECT warehouse_id, sku, sum(units) FROM (
        SELECT warehouse_id, sku, quantity - short AS units FROM new_rows WHERE status = 'open'
        UNION ALL
        SELECT warehouse_id, sku, short - quantity FROM old_rows WHERE status = 'open'
    ) AS change
    GROUP BY warehouse_id, sku HAVING sum(units) <> 0 ORDER BY warehouse_id, sku
    ON CONFLICT (warehouse_id, sku) DO UPDATE SET held = reservation_totals.held + excluded.held;
    RETURN NULL;
END $$;

CREATE TRIGGER reservations_totalled_on_insert AFTER INSERT ON reservations REFERENCING NEW TABLE AS moved
    FOR EACH STATEMENT EXECUTE FUNCTION total_added_or_removed_reservations();
CREATE TRIGGER reservations_totalled_on_update AFTER UPDATE ON reservations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION total_changed_reservations();
CREATE TRIGGER reservations_totalled_on_delete AFTER DELETE ON reservations REFERENCING OLD TABLE AS moved
    FOR EACH STATEMENT EXECUTE FUNCTION total_added_or_removed_reservations();
-- Truncating would leave the totals behind: every later check of a (warehouse, sku) would then fail, not pass.

-- 007's check, each (warehouse, sku) once a round, against the totals: two lookups by key, whatever is open.
CREATE OR REPLACE FUNCTION check_reserved_matches_reservations() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    round   text := statement_timestamp()::text || E'\n';
    key     text := NEW.warehouse_id || E'\t' || NEW.sku || E'\n';
    checked text := coalesce(current_setting('oms.ledger_checked', true), '');
    booked  integer;
    held    integer;
BEGIN
    IF starts_with(checked, round) THEN
        IF position(E'\n' || key IN checked) > 0 THEN
            RETURN NULL;
        END IF;
    ELSE
        checked := round;
    END IF;
    SELECT (SELECT s.reserved FROM stock s WHERE s.warehouse_id = NEW.warehouse_id AND s.sku = NEW.sku),
           coalesce((SELECT t.held FROM reservation_totals t
                      WHERE t.warehouse_id = NEW.warehouse_id AND t.sku = NEW.sku), 0)
      INTO booked, held;
    IF booked IS DISTINCT FROM held THEN
        RAISE EXCEPTION 'stock %/% reserves % units but its open reservations hold %',
            NEW.warehouse_id, NEW.sku, booked, held
            USING ERRCODE = 'check_violation', CONSTRAINT = 'reserved_matches_reservations';
    END IF;
    PERFORM set_config('oms.ledger_checked', checked || key, true);
    RETURN NULL;
END $$;
