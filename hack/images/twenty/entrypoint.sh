#!/bin/bash
# crm-local stand-in for twentycrm/twenty's /app/entrypoint.sh
# (twentyhq/twenty@00c31a5 packages/twenty-docker/twenty/entrypoint.sh, the
# v1.8 window), written from the contract in docs/products.md, not Twenty:
#   setup_and_migrate_db, unless DISABLE_DB_MIGRATIONS is exactly true: the
#     database URL split with awk as the real script does (a password with
#     : @ / or ? breaks it), the database checked through the database named
#     postgres and created when missing, the schema created on an empty one,
#     then `yarn command:prod upgrade` always (the schema to the image's
#     version)
#   register_background_jobs, unless DISABLE_CRON_JOBS_REGISTRATION is
#     exactly true: Redis must answer (a failure only warns)
#   then exec "$@"
set -e
say() { echo "twenty stand-in: $*"; }

setup_and_migrate_db() {
	if [ "${DISABLE_DB_MIGRATIONS}" = "true" ]; then
		echo "Database setup and migrations are disabled, skipping..."
		return
	fi
	PGUSER=$(echo "$PG_DATABASE_URL" | awk -F '//' '{print $2}' | awk -F ':' '{print $1}')
	PGPASS=$(echo "$PG_DATABASE_URL" | awk -F ':' '{print $3}' | awk -F '@' '{print $1}')
	PGHOST=$(echo "$PG_DATABASE_URL" | awk -F '@' '{print $2}' | awk -F ':' '{print $1}')
	PGPORT=$(echo "$PG_DATABASE_URL" | awk -F ':' '{print $4}' | awk -F '/' '{print $1}')
	PGDATABASE=$(echo "$PG_DATABASE_URL" | awk -F ':' '{print $4}' | awk -F '/' '{print $2}')
	export PGUSER PGHOST PGPORT PGDATABASE PGPASSWORD=$PGPASS
	db_exists=$(psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='${PGDATABASE}'")
	if [ "$db_exists" != 1 ]; then
		psql -d postgres -c "CREATE DATABASE \"${PGDATABASE}\""
	fi
	has_schema=$(psql -tAc "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = 'core')")
	if [ "$has_schema" = f ]; then
		say "setup-db and database:migrate:prod on an empty database"
		psql -v ON_ERROR_STOP=1 -q <<'SQL'
CREATE SCHEMA core;
CREATE TABLE core.workspace (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "displayName" varchar, version varchar);
CREATE TABLE core."user" (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email varchar UNIQUE, "firstName" varchar, "lastName" varchar);
CREATE TABLE core."keyValuePair" (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), key varchar UNIQUE, value jsonb);
INSERT INTO core.workspace ("displayName") VALUES ('Workspace');
SQL
	fi
	yarn command:prod upgrade
}

register_background_jobs() {
	if [ "${DISABLE_CRON_JOBS_REGISTRATION}" = "true" ]; then
		echo "Cron job registration is disabled, skipping..."
		return
	fi
	echo "Registering background sync jobs..."
	if yarn command:prod cron:register:all; then
		echo "Successfully registered all background sync jobs!"
	else
		echo "Warning: Failed to register background jobs, but continuing startup..."
	fi
}

setup_and_migrate_db
register_background_jobs
exec "$@"
