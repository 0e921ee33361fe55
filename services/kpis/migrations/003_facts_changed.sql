-- Which orders each transaction changed the facts of, so the gauges read again only those (services/kpis/window.py):
-- a reader keeps the snapshot of its last round and reads the rows of the transactions that committed since
-- (`pg_visible_in_snapshot`). A NULL order: a change to every order (a product's weight prices every shipment).
-- Readers delete what every reader has read (rows older than any reader's last round, by transaction).
CREATE TABLE facts_changed (
    changed_by xid8 NOT NULL DEFAULT pg_current_xact_id(),
    order_id   uuid
);
CREATE INDEX facts_changed_by ON facts_changed (changed_by);
