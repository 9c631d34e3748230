#!/usr/bin/env bash
# What `make test` needs from the machine beyond Go: real PostgreSQL and
# MariaDB servers (the agent's tests) and headless Chromium (the portal's
# browser tests), from Debian's packages. Installs the missing ones as root,
# or stops naming the command. SKIP_DATABASES=1 or SKIP_BROWSER=1 skip those
# tests instead, by name, and gotestsum's last line counts them.
set -euo pipefail
missing=()
if [ "${SKIP_DATABASES:-}" != 1 ]; then
	compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || missing+=(postgresql)
	{ command -v mariadbd || [ -x /usr/sbin/mariadbd ]; } >/dev/null 2>&1 || missing+=(mariadb-server)
	command -v mariadb-dump >/dev/null 2>&1 || missing+=(mariadb-client)
fi
if [ "${SKIP_BROWSER:-}" != 1 ]; then
	command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "make test needs Debian packages that are not installed: ${missing[*]}" >&2
	echo "  install them:  sudo apt-get install -y ${missing[*]}" >&2
	echo "  or skip their tests by name:  SKIP_DATABASES=1 SKIP_BROWSER=1 make test" >&2
	exit 1
fi
echo "[test-prerequisites] installing Debian packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
