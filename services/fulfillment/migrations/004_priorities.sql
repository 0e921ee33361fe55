-- The order's priority score when allocation reserved the task's units (OrderAllocated.priority): the warehouse
-- picks higher scores first. Tasks released before it existed have 0.
ALTER TABLE pick_tasks ADD COLUMN priority integer NOT NULL DEFAULT 0;
