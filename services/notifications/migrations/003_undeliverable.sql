-- A delivery set aside at once, without retries, because it cannot succeed as things stand: a recipient
-- address with a non-ASCII mailbox name on a mail server that does not offer SMTPUTF8. `last_error` says why.
-- Kept apart from 'failed' (given up after its retries) so that such deliveries can be found, and sent again
-- once the relay takes them.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'undeliverable'));
