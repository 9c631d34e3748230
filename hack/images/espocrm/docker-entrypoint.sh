#!/bin/bash
# crm-local stand-in for espocrm/espocrm's docker-entrypoint.sh, written
# from the contract (docs/products.md; espocrm/espocrm-docker@c748146
# latest/apache/docker-entrypoint.sh), not EspoCRM. What the operator relies
# on is done the same way, and what the real script refuses is refused:
#   - set -euo pipefail throughout (line 3)
#   - defaults of ESPOCRM_* as the real script's (lines 322-344)
#   - install, migrate and the ESPOCRM_CONFIG_* parameters only when $1 is
#     apache2* or php-fpm (lines 348-355); any other command is exec'd as is
#   - a volume at /var/www/html itself is the legacy layout: without
#     bin/command the start aborts (lines 295-312)
#   - db:check, up to 20 times 3 s apart (lines 43-53)
#   - install: config, chown -R www-data of data, custom and client/custom
#     (which fails as uid 33 on files another user owns), the database, the
#     admin user and password, siteUrl from ESPOCRM_SITE_URL (line 206)
#   - migrate: the schema to the image's version, then the same chown
#   - every ESPOCRM_CONFIG_<NAME> through `bin/command config:set`, which
#     takes a value beginning with "-" for an option and fails
set -euo pipefail
cd "${ESPOCRM_ROOT:-/var/www/html}"
say() { echo "espocrm stand-in: $*"; }

: "${ESPOCRM_DATABASE_PLATFORM:=Mysql}" "${ESPOCRM_DATABASE_HOST:=espocrm-db}" "${ESPOCRM_DATABASE_PORT:=}"
: "${ESPOCRM_DATABASE_NAME:=espocrm}" "${ESPOCRM_DATABASE_USER:=espocrm}" "${ESPOCRM_DATABASE_PASSWORD:=password}"
: "${ESPOCRM_ADMIN_USERNAME:=admin}" "${ESPOCRM_ADMIN_PASSWORD:=password}" "${ESPOCRM_SITE_URL:=http://localhost}"
export ESPOCRM_DATABASE_PLATFORM ESPOCRM_DATABASE_HOST ESPOCRM_DATABASE_PORT ESPOCRM_DATABASE_NAME ESPOCRM_DATABASE_USER \
	ESPOCRM_DATABASE_PASSWORD ESPOCRM_ADMIN_USERNAME ESPOCRM_ADMIN_PASSWORD ESPOCRM_SITE_URL

isLegacy() { awk '$2 == "/var/www/html" { found = 1 } END { exit !found }' /proc/mounts; }

verifyDatabaseReady() {
	for _ in $(seq 20); do
		[ "$(bin/command db:check 2>/dev/null)" = OK ] && return 0
		sleep 3
	done
	echo "error: $1: database is not ready." >&2
	exit 1
}

setPermissions() { chown -R www-data:www-data ./data ./custom ./client/custom; }

actionInstall() {
	say "installing EspoCRM $ESPOCRM_STANDIN_VERSION"
	rm -rf ./data/cache
	bin/command config:populate
	setPermissions
	bin/command config:set database.platform "$ESPOCRM_DATABASE_PLATFORM"
	bin/command config:set database.host "$ESPOCRM_DATABASE_HOST"
	bin/command config:set database.port "$ESPOCRM_DATABASE_PORT"
	bin/command config:set database.dbname "$ESPOCRM_DATABASE_NAME"
	bin/command config:set database.user "$ESPOCRM_DATABASE_USER"
	bin/command config:set database.password "$ESPOCRM_DATABASE_PASSWORD"
	verifyDatabaseReady "Installation failed: database connection error"
	bin/command rebuild
	bin/command create-admin-user "$ESPOCRM_ADMIN_USERNAME"
	printf '%s\n' "$ESPOCRM_ADMIN_PASSWORD" | bin/command set-password admin
	bin/command config:set siteUrl "$ESPOCRM_SITE_URL"
	bin/command app-check
	bin/command config:set isInstalled true --type=bool
}

actionMigrate() {
	verifyDatabaseReady "Migration failed"
	bin/command migrate
	setPermissions
}

applyConfigEnv() {
	local name value
	compgen -v | while read -r name; do
		[[ $name == ESPOCRM_CONFIG_* ]] || continue
		value=${!name}
		bin/command config:set "$(bin/command normalize-name "$name")" "$value" --type=auto
	done
}

if [[ "${1-}" == apache2* ]] || [ "${1-}" = php-fpm ]; then
	if isLegacy && [ ! -f bin/command ]; then
		echo "error: Container startup aborted. Migrate to the supported volume layout shown above and restart." >&2
		exit 1
	fi
	if [ "$(bin/command config:get isInstalled)" = true ]; then
		actionMigrate
	else
		actionInstall
	fi
	applyConfigEnv
fi
exec "$@"
