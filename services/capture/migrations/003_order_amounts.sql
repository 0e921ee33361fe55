-- An order total may be up to about 10**18 (at most 1000 lines of 1,000,000 units at up to 10**9 each, plus
-- shipping: the bounds of the schema); numeric(14, 4) held only 10**10, so a large rejected order failed to
-- be stored. 20 digits before the point hold every total the schema lets through.
ALTER TABLE orders ALTER COLUMN total TYPE numeric(24, 4);
