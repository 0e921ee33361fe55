-- One row per order, locked (FOR UPDATE) by every transaction that decides about the order's pick tasks:
-- releasing new ones, withdrawing them for a cancellation, following the warehouse's reports. A whole-order
-- cancellation and the release of a pick task for that order, handled at the same moment by two instances,
-- would otherwise each miss the other's uncommitted row and a task could reach the warehouse for a cancelled
-- order. Rows are created on first use; taken in order_id order when a batch holds several orders.
CREATE TABLE order_locks (
    order_id uuid PRIMARY KEY
);
