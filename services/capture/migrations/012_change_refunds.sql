-- What became of the refund of a change's `due_back` (returns asks the payment provider): refunded (the amount and
-- the provider's reference) or abandoned (the reason: an operator settles it). NULL while none was answered.
ALTER TABLE order_changes
    ADD COLUMN refund_state text CHECK (refund_state IN ('refunded', 'abandoned')),
    ADD COLUMN refunded numeric(24, 4),
    ADD COLUMN refund_note text;
