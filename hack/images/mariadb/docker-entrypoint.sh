#!/bin/bash
# Stand-in for the official image's entrypoint (MariaDB/mariadb-docker@1b6429b
# 11.8/docker-entrypoint.sh), for the real node of the local cluster: the same
# documented interface (MARIADB_ROOT_PASSWORD, MARIADB_DATABASE, MARIADB_USER,
# MARIADB_PASSWORD; root@'%' as MARIADB_ROOT_HOST's default; the healthcheck
# user and $DATADIR/.my-healthcheck.cnf that healthcheck.sh reads), none of
# its extras (init scripts, replication, timezones, gosu: the pod runs as uid
# 999 already).
set -Eeuo pipefail
datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock
sql_escape() { sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/\\\\'/g" <<<"$1"; }
if [ "${1:-}" = mariadbd ] && [ ! -d "$datadir/mysql" ]; then
	if [ -z "${MARIADB_ROOT_PASSWORD:-}" ]; then
		echo "Error: Database is uninitialized and password option is not specified (MARIADB_ROOT_PASSWORD)." >&2
		exit 1
	fi
	mariadb-install-db --datadir="$datadir" --skip-test-db --auth-root-authentication-method=normal \
		--skip-name-resolve --default-time-zone=SYSTEM >/dev/null
	mariadbd --datadir="$datadir" --skip-networking --socket="$socket" &
	pid=$!
	for _ in $(seq 1 60); do mariadb-admin --socket="$socket" -uroot ping >/dev/null 2>&1 && break; sleep 0.5; done
	root_pw=$(sql_escape "$MARIADB_ROOT_PASSWORD")
	hc_pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
	{
		echo "SET @@SESSION.SQL_LOG_BIN=0;"
		echo "DELETE FROM mysql.user WHERE user NOT IN ('mysql.sys', 'mariadb.sys', 'root') OR host NOT IN ('localhost');"
		echo "SET PASSWORD FOR 'root'@'localhost' = PASSWORD('$root_pw');"
		echo "CREATE USER 'root'@'%' IDENTIFIED BY '$root_pw';"
		echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
		for host in 127.0.0.1 ::1 localhost; do
			echo "CREATE USER IF NOT EXISTS healthcheck@'$host' IDENTIFIED BY '$hc_pw';"
			echo "GRANT USAGE ON *.* TO healthcheck@'$host';"
		done
		if [ -n "${MARIADB_DATABASE:-}" ]; then
			echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
		fi
		if [ -n "${MARIADB_USER:-}" ] && [ -n "${MARIADB_PASSWORD:-}" ]; then
			echo "CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY '$(sql_escape "$MARIADB_PASSWORD")';"
			[ -n "${MARIADB_DATABASE:-}" ] && echo "GRANT ALL ON \`${MARIADB_DATABASE//_/\\_}\`.* TO '$MARIADB_USER'@'%';"
		fi
		echo "FLUSH PRIVILEGES;"
	} | mariadb --socket="$socket" -uroot --binary-mode
	printf '[mariadb-client]\nport=3306\nsocket=%s\nuser=healthcheck\npassword=%s\n' "$socket" "$hc_pw" >"$datadir/.my-healthcheck.cnf"
	kill "$pid"
	wait "$pid" || true
	echo "MariaDB init process done. Ready for start up."
fi
exec "$@"
