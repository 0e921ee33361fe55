-- Dead letters the dead-letter topic could not take (larger than the broker accepts once the dlq.* headers are
-- added, or refused for good, e.g. not authorised): the original record is kept here, in the service's own
-- schema, until `oms dlq replay` sends it back to its origin topic. One row per origin record: the offset
-- with the record's timestamp, so that a recreated topic's offsets cannot collide with an older record's.
CREATE TABLE dead_letters (
    id               bigserial PRIMARY KEY,
    origin_topic     text NOT NULL,
    origin_partition integer NOT NULL,
    origin_offset    bigint NOT NULL,
    origin_timestamp bigint NOT NULL,
    key              bytea,
    value            bytea,
    header_keys      bytea[] NOT NULL,  -- bytes: a header name may hold what a text column cannot (NUL)
    header_values    bytea[] NOT NULL,
    reason           text NOT NULL,
    unreadable       boolean NOT NULL DEFAULT false,  -- the Kafka client could not parse it: origin only
    failed_at        timestamptz NOT NULL DEFAULT now(),
    replayed_at      timestamptz,
    replayed_to      text,
    UNIQUE (origin_topic, origin_partition, origin_offset, origin_timestamp)
);
