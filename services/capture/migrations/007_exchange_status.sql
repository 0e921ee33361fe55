-- The order view's return status: the state of the order's return that moved last.
ALTER TABLE return_lines ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
