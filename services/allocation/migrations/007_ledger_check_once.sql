-- The ledger check of 001 ran two queries for every row a transaction wrote to stock or reservations: at commit, a
-- batch of a hundred orders checked the same (warehouse, sku) once for each of its rows, a third of allocation's
-- database time. The check is deferred to commit, when every row is written, so checking each (warehouse, sku) once
-- per round of firings proves the same. A round is told apart by the statement that fires it (statement_timestamp:
-- the COMMIT, or each statement while the constraints are set IMMEDIATE), and what it has checked lives in a
-- transaction-local setting, gone at commit or rollback.
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
    SELECT reserved INTO booked FROM stock WHERE warehouse_id = NEW.warehouse_id AND sku = NEW.sku;
    SELECT coalesce(sum(quantity - short), 0) INTO held FROM reservations
     WHERE warehouse_id = NEW.warehouse_id AND sku = NEW.sku AND status = 'open';
    IF booked IS DISTINCT FROM held THEN
        RAISE EXCEPTION 'stock %/% reserves % units but its open reservations hold %',
            NEW.warehouse_id, NEW.sku, booked, held
            USING ERRCODE = 'check_violation', CONSTRAINT = 'reserved_matches_reservations';
    END IF;
    PERFORM set_config('oms.ledger_checked', checked || key, true);
    RETURN NULL;
END $$;
