#!/bin/bash
# crm-local stand-in for the official odoo image's /entrypoint.sh
# (odoo/docker@f7f6765 18.0/entrypoint.sh): the same variables and the same
# dispatch. HOST, PORT, USER and PASSWORD default as there and are passed to
# odoo as --db_* unless $ODOO_RC sets them; `odoo ...`, `-- ...` and `-...`
# wait for the database (pg_isready here, wait-for-psql.py there) and run
# odoo; anything else is exec'd as given. The wait logs in as Odoo's does.
set -e

if [ -v PASSWORD_FILE ]; then
	PASSWORD="$(<"$PASSWORD_FILE")"
fi
: "${HOST:=${DB_PORT_5432_TCP_ADDR:=${PGHOST:='db'}}}"
: "${PORT:=${DB_PORT_5432_TCP_PORT:=${PGPORT:=5432}}}"
: "${USER:=${DB_ENV_POSTGRES_USER:=${POSTGRES_USER:=${PGUSER:='odoo'}}}}"
: "${PASSWORD:=${DB_ENV_POSTGRES_PASSWORD:=${POSTGRES_PASSWORD:=${PGPASSWORD:='odoo'}}}}"

DB_ARGS=()
check_config() {
	if ! grep -q -E "^\s*\b$1\b\s*=" "$ODOO_RC" 2>/dev/null; then
		DB_ARGS+=("--$1" "$2")
	fi
}
check_config db_host "$HOST"
check_config db_port "$PORT"
check_config db_user "$USER"
check_config db_password "$PASSWORD"

# wait-for-psql.py (odoo/docker@f7f6765 18.0/wait-for-psql.py): the
# configuration file's db_* first, then HOST/PORT/USER/PASSWORD; it logs in
# to the database named postgres, with the password, for 30 s.
rc_value() {
	[ -f "$ODOO_RC" ] || return 0
	sed -nE "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*(.*[^[:space:]])[[:space:]]*$/\1/p" "$ODOO_RC" | tail -1
}
wait_for_psql() {
	local host port user password
	host=$(rc_value db_host) port=$(rc_value db_port) user=$(rc_value db_user) password=$(rc_value db_password)
	host=${host:-$HOST} port=${port:-$PORT} user=${user:-$USER} password=${password:-$PASSWORD}
	local err=''
	for _ in $(seq 30); do
		err=$(PGPASSWORD=$password psql -h "$host" -p "$port" -U "$user" -d postgres -tAc 'SELECT 1' 2>&1 >/dev/null) && return 0
		sleep 1
	done
	echo "Unable to connect to the database. Exception: $err" >&2
	exit 1
}

case "$1" in
-- | odoo)
	shift
	wait_for_psql
	exec odoo "$@" "${DB_ARGS[@]}"
	;;
-*)
	wait_for_psql
	exec odoo "$@" "${DB_ARGS[@]}"
	;;
*)
	exec "$@"
	;;
esac
