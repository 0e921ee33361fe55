-- Orders are now locked with advisory locks (repository.lock_orders), which write no WAL and leave no row behind.
-- The table is no longer written; it stays until no instance of the earlier version can run beside this one,
-- since those still lock its rows and would not see the advisory locks: upgrade fulfillment with its instances
-- stopped, or accept that a cancellation and a release meeting during the rollout are not kept apart.
COMMENT ON TABLE order_locks IS 'unused: orders are locked with advisory locks (migration 008); drop in a later release';
