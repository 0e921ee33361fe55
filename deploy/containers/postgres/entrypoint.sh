#!/bin/sh
# Initialise the cluster once (administrator `oms` with OMS_PG_ADMIN_PASSWORD, C collation, SCRAM everywhere),
# then run the server in the foreground on every interface of the container.
#   PGPORT (5432)                the server's port
#   OMS_PG_SOCKET_DIR (/tmp)     its socket directory (the compose stack's root filesystem is read-only but /tmp)
set -eu
: "${OMS_PG_ADMIN_PASSWORD:?set OMS_PG_ADMIN_PASSWORD}"
bin=/usr/lib/postgresql/15/bin
data=/var/lib/postgresql/data
if [ ! -f "$data/PG_VERSION" ]; then
  pwfile="$(mktemp)"
  printf '%s\n' "$OMS_PG_ADMIN_PASSWORD" >"$pwfile"
  "$bin/initdb" -D "$data" -U oms --auth-local=scram-sha-256 --auth-host=scram-sha-256 --pwfile="$pwfile" \
    -E UTF8 --locale=C >/dev/null
  rm -f "$pwfile"
  cat >"$data/pg_hba.conf" <<HBA
# Written by the image's entry point: a SCRAM password for every connection, nothing trusted.
local   all  all                scram-sha-256
host    all  all  0.0.0.0/0     scram-sha-256
host    all  all  ::/0          scram-sha-256
HBA
fi
# The stack's settings for the write load (deploy/config/postgres.conf), also for a volume initialised before them.
grep -q "^include_if_exists = '/etc/oms/postgres.conf'" "$data/postgresql.conf" \
  || echo "include_if_exists = '/etc/oms/postgres.conf'" >>"$data/postgresql.conf"
exec "$bin/postgres" -D "$data" -c listen_addresses='*' -c max_connections="${OMS_PG_MAX_CONNECTIONS:-200}" \
  -c password_encryption=scram-sha-256 -c unix_socket_directories="${OMS_PG_SOCKET_DIR:-/tmp}"
