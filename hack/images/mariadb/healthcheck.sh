#!/bin/bash
# Stand-in for the official image's healthcheck.sh (MariaDB/mariadb-docker@1b6429b
# 11.8/healthcheck.sh) for the two tests the operator's readiness probe asks
# for: --connect (a connection to the server) and --innodb_initialized
# (InnoDB ready), as the healthcheck user of $DATADIR/.my-healthcheck.cnf.
set -eu
cnf=/var/lib/mysql/.my-healthcheck.cnf
sql() { mariadb --defaults-extra-file="$cnf" --skip-column-names --batch "$@"; }
for test in "$@"; do
	case $test in
	--connect) sql -e 'SELECT 1' >/dev/null ;;
	--innodb_initialized)
		[ "$(sql -e "select 1 from information_schema.ENGINES WHERE engine='innodb' AND support in ('YES', 'DEFAULT', 'ENABLED')")" = 1 ]
		;;
	*) echo "healthcheck.sh (stand-in): $test is not implemented" >&2; exit 2 ;;
	esac
done
