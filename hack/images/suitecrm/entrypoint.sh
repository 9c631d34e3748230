#!/bin/bash
# crm-local stand-in for Bitnami's SuiteCRM 8 entrypoint
# (/opt/bitnami/scripts/suitecrm/entrypoint.sh and the setup scripts it runs;
# bitnami/containers@eb446a0, libapache.sh, libsuitecrm.sh@043f89c,
# libpersistence.sh), written from the contract in docs/products.md, not
# SuiteCRM. Setup runs only when $1 is run.sh (line 22), under errexit:
#   apache   ports: a non-root user below 1024 is refused ("privileged port
#            requested"), HTTP and HTTPS must differ
#   suitecrm SUITECRM_DATABASE_PASSWORD required; SUITECRM_ENABLE_HTTPS
#            yes|no|true|false, and yes aborts the first start (a read-only
#            url_port assigned again, lines 363-365); an SMTP host needs a port
#   first    (the volume empty but lost+found): the database within 60 s
#   start    (SELECT 1 as the user), the installation (the tables the
#            operator's rules name, public/legacy/config.php with site_url
#            http://$SUITECRM_HOST:$APACHE_HTTP_PORT_NUMBER), the SMTP step,
#            then the whole application copied to /bitnami/suitecrm
#   always   restore_persisted_app: /opt/bitnami/suitecrm replaced by a link
#            to /bitnami/suitecrm (needs /opt/bitnami writable), then the
#            database from config.php's credentials within 60 s
set -euo pipefail
. "${BITNAMI_SCRIPTS_DIR:-/opt/bitnami/scripts}/suitecrm-env.sh"
. "${BITNAMI_SCRIPTS_DIR:-/opt/bitnami/scripts}/libpersistence.sh"
say() { echo "suitecrm stand-in: $*"; }
fail() { echo "suitecrm stand-in: ERROR ==> $*" >&2; exit 1; }

case "${1-}" in
/opt/bitnami/scripts/suitecrm/run.sh | /opt/bitnami/scripts/apache/run.sh | /opt/bitnami/scripts/nginx-php-fpm/run.sh) ;;
*) exec "$@" ;;
esac

http=${APACHE_HTTP_PORT_NUMBER:-8080} https=${APACHE_HTTPS_PORT_NUMBER:-8443}
for var in APACHE_HTTP_PORT_NUMBER APACHE_HTTPS_PORT_NUMBER; do
	port=${!var:-}
	[ -n "$port" ] || continue
	[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -le 65535 ] || fail "An invalid port was specified in the environment variable $var: invalid port."
	if [ "$(id -u)" != 0 ] && [ "$port" -lt 1024 ]; then
		fail "An invalid port was specified in the environment variable $var: privileged port requested."
	fi
done
[ "$http" != "$https" ] || fail "APACHE_HTTP_PORT_NUMBER and APACHE_HTTPS_PORT_NUMBER are bound to the same port!"
[ -n "${SUITECRM_DATABASE_PASSWORD:-}" ] || fail "The SUITECRM_DATABASE_PASSWORD environment variable is empty or not set."
case "${SUITECRM_ENABLE_HTTPS:-no}" in yes | no | true | false) ;; *) fail "SUITECRM_ENABLE_HTTPS: valid values are yes, no, true or false" ;; esac
if [ -n "${SUITECRM_SMTP_HOST:-}" ]; then
	[[ "${SUITECRM_SMTP_PORT_NUMBER:-}" =~ ^[0-9]+$ ]] || fail "The SUITECRM_SMTP_PORT_NUMBER environment variable is invalid"
	case "${SUITECRM_SMTP_PROTOCOL:-}" in "" | ssl | tls) ;; *) fail "SUITECRM_SMTP_PROTOCOL: valid values are ssl or tls" ;; esac
fi

# SUITECRM_STANDIN_VALIDATE_ONLY=1: stop here, the settings taken (tests).
if [ "${SUITECRM_STANDIN_VALIDATE_ONLY:-}" = 1 ]; then
	say "the settings pass the setup's validation"
	exit 0
fi

wait_for_db() { # HOST PORT NAME USER PASSWORD
	for _ in $(seq 12); do
		echo "SELECT 1" | MYSQL_PWD=$5 mariadb -h "$1" -P "$2" --connect-timeout=5 -N -u "$4" "$3" >/dev/null 2>&1 && return 0
		sleep 5
	done
	fail "Could not connect to the database"
}
db() { MYSQL_PWD=$SUITECRM_DATABASE_PASSWORD mariadb -h "$SUITECRM_DATABASE_HOST" -P "${SUITECRM_DATABASE_PORT_NUMBER:-3306}" -u "$SUITECRM_DATABASE_USER" "$SUITECRM_DATABASE_NAME" "$@"; }

if ! is_app_initialized suitecrm; then
	say "installing SuiteCRM $SUITECRM_STANDIN_VERSION"
	wait_for_db "$SUITECRM_DATABASE_HOST" "${SUITECRM_DATABASE_PORT_NUMBER:-3306}" "$SUITECRM_DATABASE_NAME" "$SUITECRM_DATABASE_USER" "$SUITECRM_DATABASE_PASSWORD"
	url_protocol=http
	if [ "$SUITECRM_ENABLE_HTTPS" = yes ] || [ "$SUITECRM_ENABLE_HTTPS" = true ]; then
		fail "suitecrm_pass_wizard: url_port: readonly variable"
	fi
	db <<'SQL'
CREATE TABLE contacts (id char(36) PRIMARY KEY, first_name varchar(100), last_name varchar(100), description text,
  phone_home varchar(100), phone_mobile varchar(100), phone_work varchar(100), phone_other varchar(100),
  primary_address_street varchar(150), primary_address_city varchar(100), primary_address_postalcode varchar(20),
  alt_address_street varchar(150), assistant varchar(75), assistant_phone varchar(100), deleted tinyint DEFAULT 0);
CREATE TABLE leads (id char(36) PRIMARY KEY, first_name varchar(100), last_name varchar(100), account_name varchar(255), description text,
  phone_mobile varchar(100), phone_work varchar(100), primary_address_street varchar(150), primary_address_city varchar(100), deleted tinyint DEFAULT 0);
CREATE TABLE accounts (id char(36) PRIMARY KEY, name varchar(150), description text, phone_office varchar(100), billing_address_street varchar(150));
CREATE TABLE email_addresses (id char(36) PRIMARY KEY, email_address varchar(255), email_address_caps varchar(255));
CREATE TABLE notes (id char(36) PRIMARY KEY, name varchar(255), description text);
CREATE TABLE emails_text (email_id char(36) PRIMARY KEY, description text, description_html text, from_addr varchar(255), to_addrs text, cc_addrs text);
CREATE TABLE schedulers (id char(36) PRIMARY KEY, name varchar(255), status varchar(100));
CREATE TABLE outbound_email (id char(36) PRIMARY KEY, mail_smtpserver varchar(100));
CREATE TABLE job_queue (id char(36) PRIMARY KEY, status varchar(20));
CREATE TABLE inbound_email (id char(36) PRIMARY KEY, status varchar(100));
CREATE TABLE users (id char(36) PRIMARY KEY, user_name varchar(60) UNIQUE, user_hash varchar(255), is_admin tinyint);
CREATE TABLE config (category varchar(32), name varchar(32), value text);
INSERT INTO schedulers VALUES (UUID(), 'Process Workflow Tasks', 'Active');
SQL
	db -e "INSERT INTO users VALUES (UUID(), '${SUITECRM_USERNAME:-user}', SHA2('$(printf '%s' "${SUITECRM_PASSWORD:-bitnami}" | sed "s/'/''/g")', 256), 1); INSERT INTO config VALUES ('info', 'sugar_version', '$SUITECRM_STANDIN_VERSION')"
	mkdir -p "$SUITECRM_BASE_DIR/public/legacy"
	cat >"$SUITECRM_BASE_DIR/public/legacy/config.php" <<PHP
<?php
\$sugar_config = array (
  'dbconfig' => array (
    'db_host_name' => '$SUITECRM_DATABASE_HOST',
    'db_port' => '${SUITECRM_DATABASE_PORT_NUMBER:-3306}',
    'db_user_name' => '$SUITECRM_DATABASE_USER',
    'db_password' => '$SUITECRM_DATABASE_PASSWORD',
    'db_name' => '$SUITECRM_DATABASE_NAME',
  ),
  'host_name' => '$SUITECRM_HOST',
  'site_url' => '$url_protocol://$SUITECRM_HOST:$http',
  'sugar_version' => '$SUITECRM_STANDIN_VERSION',
);
PHP
	if [ -n "${SUITECRM_SMTP_HOST:-}" ]; then
		# suitecrm_pass_smtp_wizard posts to ${url_protocol}://127.0.0.1:${APACHE_HTTP_PORT_NUMBER}.
		db -e "INSERT INTO outbound_email VALUES (UUID(), '$SUITECRM_SMTP_HOST')"
		say "SMTP configured through $url_protocol://127.0.0.1:$http: $SUITECRM_SMTP_HOST:$SUITECRM_SMTP_PORT_NUMBER"
	fi
	persist_app suitecrm "$SUITECRM_DATA_TO_PERSIST"
else
	say "restoring the persisted SuiteCRM installation"
	restore_persisted_app suitecrm "$SUITECRM_DATA_TO_PERSIST"
	conf="$SUITECRM_BASE_DIR/public/legacy/config.php"
	[ -r "$conf" ] || fail "$conf cannot be read"
	value() { sed -nE "s/^ *'$1' => '(.*)',$/\1/p" "$conf" | head -1; }
	wait_for_db "$(value db_host_name)" "$(value db_port)" "$(value db_name)" "$(value db_user_name)" "$(value db_password)"
fi
exec "$@"
