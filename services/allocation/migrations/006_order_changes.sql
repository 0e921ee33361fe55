-- Order changes (issue 14): the order's version (0 as taken in), and its lines, ship-to and service level change with it.
ALTER TABLE orders ADD COLUMN version integer NOT NULL DEFAULT 0;
