-- What an order carries (its document, lines, addresses, texts) is read and written whole, never searched, joined,
-- grouped or sorted on: statistics of it serve no plan. Gathering them was half of what analyzing the table cost,
-- and autovacuum analyzes a growing table every minute, at the order path's expense for the seconds it takes
-- (docs/benchmarks/findings.md, round 36). Statistics target 0: these columns are left out of ANALYZE.
ALTER TABLE pick_tasks
    ALTER COLUMN lines SET STATISTICS 0,
    ALTER COLUMN ship_to SET STATISTICS 0,
    ALTER COLUMN picked_lines SET STATISTICS 0;
ALTER TABLE shipments ALTER COLUMN lines SET STATISTICS 0;
