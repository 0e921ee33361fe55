-- The open reservations' index served the ledger check's sum, which 009 replaced with totals kept per (warehouse, sku);
-- no query reads it any more. Without it no index names the status, so a reservation's one rewrite (shipped or
-- released) can be a HOT update (008 left room for it on the page): no new entries in the other two indexes.
DROP INDEX reservations_open;
