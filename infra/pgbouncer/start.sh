#!/bin/sh
# Starts PgBouncer with infra/pgbouncer/pgbouncer.ini, writing its auth file from the environment
# (PGBOUNCER_DB_USER / PGBOUNCER_DB_PASSWORD, from a secret) so no password lives in the ini or
# the image. The password is the PostgreSQL role's: PgBouncer checks clients with SCRAM against it
# and logs in to PostgreSQL with it.
set -eu
: "${PGBOUNCER_DB_USER:?PGBOUNCER_DB_USER is required}"
: "${PGBOUNCER_DB_PASSWORD:?PGBOUNCER_DB_PASSWORD is required}"
umask 077
printf '"%s" "%s"\n' "$PGBOUNCER_DB_USER" "$PGBOUNCER_DB_PASSWORD" > /tmp/pgbouncer-userlist.txt
exec pgbouncer "${PGBOUNCER_INI:-/etc/pgbouncer/pgbouncer.ini}"
