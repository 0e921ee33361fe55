-- An order's row changes about four times on its way (validated, allocated, shipped, delivered), and every change
-- wrote a new entry in each of the table's indexes: status was in the open-orders index's condition, and full
-- pages left no room for the new version beside the old. With status out of every index and a fifth of each page
-- kept free, PostgreSQL updates in place (a HOT update): no index entries, and the page prunes the old version.
-- The index now also holds an account's rejected and cancelled orders; the exposure query filters them by status.
DROP INDEX orders_account_open;
CREATE INDEX orders_account ON orders (account) WHERE account IS NOT NULL;
ALTER TABLE orders SET (fillfactor = 80);
