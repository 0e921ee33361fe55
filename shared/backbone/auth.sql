-- The API keys of channels and operators (shared/backbone/auth.py). Owned by the administrator, who issues and revokes
-- keys (`oms keys`); every service may only read them. Safe to apply again: every statement is idempotent.
CREATE SCHEMA IF NOT EXISTS auth;
REVOKE ALL ON SCHEMA auth FROM PUBLIC;

CREATE TABLE IF NOT EXISTS auth.api_keys (
    key_id          text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{16}$'),
    role            text NOT NULL CHECK (role IN ('channel', 'operator')),
    channel         text CHECK (channel ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    secret_sha256   bytea NOT NULL CHECK (length(secret_sha256) = 32),
    label           text NOT NULL DEFAULT '',
    rate_per_second integer CHECK (rate_per_second > 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    CONSTRAINT channel_keys_name_their_channel CHECK ((role = 'channel') = (channel IS NOT NULL))
);
REVOKE ALL ON auth.api_keys FROM PUBLIC;
