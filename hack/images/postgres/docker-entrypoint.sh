#!/bin/bash
# Stand-in for the official image's entrypoint (docker-library/postgres@6edb0a8
# docker-entrypoint.sh), for the real node of the local cluster: the same
# documented interface (POSTGRES_PASSWORD required, POSTGRES_USER, POSTGRES_DB,
# PGDATA; initdb on an empty PGDATA; host connections with the server's
# password_encryption, `host all all all scram-sha-256`; listen on every
# address), none of its extras (init scripts, nss_wrapper, gosu: the pod runs
# as uid 999 already).
set -Eeuo pipefail
: "${PGDATA:=/var/lib/postgresql/data}"
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ]; then
		echo "Error: Database is uninitialized and superuser password is not specified (POSTGRES_PASSWORD)." >&2
		exit 1
	fi
	user=${POSTGRES_USER:-postgres}
	db=${POSTGRES_DB:-$user}
	mkdir -p "$PGDATA"
	chmod 00700 "$PGDATA"
	initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") >/dev/null
	printf 'host all all all %s\n' "$(postgres -C password_encryption)" >>"$PGDATA/pg_hba.conf"
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start >/dev/null
	if [ "$db" != postgres ]; then
		PGPASSWORD= psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$user" --dbname postgres --set db="$db" <<<'CREATE DATABASE :"db";' >/dev/null
	fi
	pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	echo "PostgreSQL init process complete; ready for start up."
fi
exec "$@"
