-- An order's priority (services.allocation.priority), assessed once when allocation first took the order: the base
-- score and its components [{name, points, detail}]. Age points are earned while waiting and counted when serving.
-- Orders taken before priorities existed have none (0): among themselves they stay first come first served.
ALTER TABLE orders
    ADD COLUMN priority            integer NOT NULL DEFAULT 0,
    ADD COLUMN priority_components jsonb NOT NULL DEFAULT '[]';
