package crm

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// Sources the product contracts were read from: repository@commit path.
const (
	srcEspoDockerfile  = "espocrm/espocrm-docker@c748146 latest/apache/Dockerfile"
	srcEspoEntrypoint  = "espocrm/espocrm-docker@c748146 latest/apache/docker-entrypoint.sh"
	srcEspoDaemon      = "espocrm/espocrm-docker@c748146 latest/apache/docker-daemon.sh, docker-websocket.sh"
	srcEspoConfig      = "espocrm/espocrm installer settings (smtpServer, smtpPort, smtpAuth, smtpSecurity, smtpUsername, smtpPassword, outboundEmailFromAddress)"
	srcOdooDockerfile  = "odoo/docker@f7f6765 18.0/Dockerfile"
	srcOdooEntrypoint  = "odoo/docker@f7f6765 18.0/entrypoint.sh, 18.0/wait-for-psql.py"
	srcOdooConf        = "odoo/docker@f7f6765 18.0/odoo.conf"
	srcOdooOptions     = "odoo/odoo@00516f2 odoo/tools/config.py"
	srcOdoo18Config    = "odoo 18.0 odoo/tools/config.py lines 235-236 (smtp_port type int), 497-498 and 532-533 (values of the file cast at import: int('') raises OptionValueError), 799-809 (sessions under data_dir, asserted writable), read in gzambrano27/odoo18@a13276fd and ducminh-1/odoo-18.0@82a18140 (byte-identical; odoo/odoo is too large to mirror here)"
	srcOdoo18URL       = "odoo 18.0 odoo/addons/base/models/res_users.py lines 964-978 (an administrator's login sets web.base.url unless web.base.url.freeze), ir_config_parameter.py lines 40-42 (key unique); gzambrano27/odoo18@a13276fd"
	srcOdoo18DB        = "odoo/docker@f7f6765 18.0/wait-for-psql.py line 41 (dbname='postgres'); odoo 18.0 odoo/service/db.py lines 132, 448-457 (the postgres database; with dbfilter only databases the role owns); gzambrano27/odoo18@a13276fd"
	srcSuiteDockerfile = "bitnami/containers@310e487 bitnami/suitecrm/8/debian-12/Dockerfile"
	srcSuitePostunpack = "bitnami/containers@159b89e bitnami/suitecrm/8/debian-12/rootfs/opt/bitnami/scripts/suitecrm/postunpack.sh"
	srcSuiteLib        = "bitnami/containers@5574863 bitnami/suitecrm/8/debian-12/rootfs/opt/bitnami/scripts/libsuitecrm.sh"
	srcSuiteRun        = "bitnami/containers@eb446a0 bitnami/suitecrm/8/debian-12/rootfs/opt/bitnami/scripts/suitecrm/{entrypoint,run}.sh"
	srcSuiteApache     = "bitnami/containers libapache.sh apache_validate (check_allowed_port adds -unprivileged when not root, lines 39, 54-57) and libvalidations.sh validate_port (\"privileged port requested\"), the copies under bitnami/suitecrm/8/debian-12/rootfs/opt/bitnami/scripts/"
	srcSuitePersist    = "bitnami/containers libpersistence.sh restore_persisted_app (rm -rf, then ln -sfn /bitnami/suitecrm /opt/bitnami/suitecrm); @310e487 bitnami/suitecrm/8/debian-12/Dockerfile has no `RUN chmod g+rwX /opt/bitnami` (@047a5be 8/debian-11 and @00530c0 wordpress/6/debian-12 have it); bitnami/containers#18446 (SuiteCRM 8 as 1001: rm: cannot remove ... Permission denied)"
	srcSuiteOverride   = "salesagility/SuiteCRM@05a6ec9 include/entryPoint.php (require_once 'config_override.php' after config.php)"
	srcTwentyDocker    = "twentyhq/twenty@9533909 packages/twenty-docker/twenty/Dockerfile"
	srcTwentyEntry     = "twentyhq/twenty@00c31a5 packages/twenty-docker/twenty/entrypoint.sh (the v1.8 window: PG URL parsed with awk, removed 2025-10-23; upstream lines = lines - 9 for 13-60)"
	srcTwentyEntryOld  = "twentyhq/twenty@d8a26a3 packages/twenty-docker/twenty/entrypoint.sh (before 2025-05-02)"
	srcTwentyFront     = "twentyhq/twenty@7890768 packages/twenty-server/src/utils/generate-front-config.ts (writeFileSync in a try/catch since twentyhq/twenty#13094, 2025-07-08)"
	srcTwentyTelemetry = "twentyhq/twenty@442e2cd packages/twenty-server/src/engine/core-modules/twenty-config/config-variables.ts lines 584-590 (TELEMETRY_ENABLED = true), 904-908 (IS_CONFIG_VARIABLES_IN_DB_ENABLED = true); twentyhq/twenty@345b088 .../telemetry/telemetry.service.ts lines 23, 39 (POST /selfHostingEvent)"
	srcTwentyCompose   = "twentyhq/twenty@6d8cf44 packages/twenty-docker/docker-compose.yml"
	srcTwentyConfig    = "twentyhq/twenty@002d297 packages/twenty-server/src/engine/core-modules/twenty-config/config-variables.ts"
	srcTwentyUpgrade   = "twenty.com/developers/section/self-hosting/upgrade-guide (upgrade one minor version at a time)"
)

// suiteSiteURL makes the environment's URL SuiteCRM's site_url (links in
// mail, redirects): the installer writes http://<host>:<Apache's port> into
// config.php once and nothing rewrites it, while legacy SuiteCRM reads
// config_override.php after config.php on every request. One marked line,
// replaced on every scheduler start; the administrators' own overrides stay.
const suiteSiteURL = `override="$SUITECRM_VOLUME_DIR/public/legacy/config_override.php"
[ -s "$override" ] || printf '<?php\n' >"$override"
sed -i -e '/crm-operator: site URL$/d' -e 's/^?>[[:space:]]*$//' "$override"
printf "\$sugar_config['site_url'] = '%s'; // crm-operator: site URL\n" "$(printf '%s' "$SUITECRM_SITE_URL" | sed "s/[\\\\']/\\\\&/g")" >>"$override"
echo "site_url is $SUITECRM_SITE_URL"
`

// suiteCRM: Bitnami's SuiteCRM 8 image (archived under bitnamilegacy/ since
// Bitnami stopped publishing free images; override spec.product.image with
// a maintained build for production). Its entrypoint installs SuiteCRM on
// the first start and restores the persisted installation from
// /bitnami/suitecrm on every later one.
func suiteCRM() Profile {
	const base = "/opt/bitnami/suitecrm"
	// Bitnami starts cron only as root (run.sh); the scheduler component
	// runs SuiteCRM's cron.php every minute as the application's user, as
	// the image's cron entry would, after restoring the persisted
	// installation and setting the site URL.
	scheduler := `set -e
. /opt/bitnami/scripts/suitecrm-env.sh
. /opt/bitnami/scripts/libpersistence.sh
until is_app_initialized suitecrm && [ -f "$SUITECRM_VOLUME_DIR/public/legacy/config.php" ]; do echo "waiting for SuiteCRM's installation"; sleep 20; done
restore_persisted_app suitecrm "$SUITECRM_DATA_TO_PERSIST"
` + suiteSiteURL + `set +e
cd "$SUITECRM_BASE_DIR/public/legacy"
while true; do php -f cron.php || echo "cron.php failed"; sleep 60; done`
	return Profile{
		Product: crmv1alpha1.ProductSuiteCRM, Image: "docker.io/bitnamilegacy/suitecrm", DefaultVersion: "8.9.0",
		// Bitnami's Apache setup refuses ports below 1024 to a non-root
		// user, whatever the kernel allows: 8080, the image's own.
		Port: 8080, UID: 1001, GID: 0, Engine: crmv1alpha1.DatabaseMariaDB,
		Files:    []FilesMount{{Path: "/bitnami/suitecrm"}},
		TmpPaths: []string{"/tmp"}, HealthPath: "/",
		UpgradePath: sameMajor("SuiteCRM", "a SuiteCRM major upgrade (7 to 8) is a migration of its own"),
		Env: func(c Connection) []corev1.EnvVar {
			return []corev1.EnvVar{
				env("SUITECRM_DATABASE_HOST", c.DatabaseHost),
				env("SUITECRM_DATABASE_PORT_NUMBER", strconv.Itoa(int(c.DatabasePort))),
				env("SUITECRM_DATABASE_NAME", c.DatabaseName),
				env("SUITECRM_DATABASE_USER", c.DatabaseUser),
				c.passwordEnv("SUITECRM_DATABASE_PASSWORD"),
				env("SUITECRM_USERNAME", AdminUser),
				secretEnv("SUITECRM_PASSWORD", c.SecretName, SecretAdminPassword),
				env("SUITECRM_HOST", siteHost(c.SiteURL)),
				// "yes" aborts the first start (suitecrm_pass_wizard
				// reassigns a read-only url_port) and has the SMTP step
				// speak TLS to the plain port; TLS ends at the Ingress.
				env("SUITECRM_ENABLE_HTTPS", "no"),
				env("APACHE_HTTP_PORT_NUMBER", "8080"),
				env("APACHE_HTTPS_PORT_NUMBER", "8443"),
				// The installer writes http://<host>:8080 once; the
				// scheduler overrides site_url with this (suiteSiteURL).
				env("SUITECRM_SITE_URL", c.SiteURL),
			}
		},
		MailEnv: func(m Mail) []corev1.EnvVar {
			protocol := ""
			if m.TLS {
				protocol = "tls"
			}
			return []corev1.EnvVar{
				env("SUITECRM_SMTP_HOST", m.Host), env("SUITECRM_SMTP_PORT_NUMBER", strconv.Itoa(int(m.Port))),
				optionalSecretEnv("SUITECRM_SMTP_USER", m.Username), optionalSecretEnv("SUITECRM_SMTP_PASSWORD", m.Password),
				env("SUITECRM_SMTP_PROTOCOL", protocol), env("SUITECRM_SMTP_NOTIFY_ADDRESS", m.From),
			}
		},
		Components: []Component{{Name: "scheduler", Run: Run{Command: []string{"/bin/bash", "-c", scheduler}}}},
		Facts: []Fact{
			personalFilesFact(crmv1alpha1.ProductSuiteCRM),
			{"start path", "entrypoint.sh (errexit, nounset, pipefail) sets up only when $1 is run.sh: apache/setup.sh (port check, certificates, the vhosts' ports), php/setup.sh, mysql-client/setup.sh, suitecrm/setup.sh (validation: SUITECRM_DATABASE_PASSWORD, SMTP port and protocol; then suitecrm_initialize), /post-init.sh; suitecrm_initialize on an empty volume: the database (SELECT 1, 12 tries 5 s apart), Apache in the background, suitecrm:app:install, the SMTP step, persist_app (getfacl into /tmp, copy to /bitnami/suitecrm), restore_persisted_app; on a later start restore_persisted_app, then the database with config.php's credentials; run.sh: no cron as non-root, then httpd -D FOREGROUND", srcSuiteRun + "; " + srcSuiteLib},
			{"image", "bitnamilegacy/suitecrm 8.9.0: APP_VERSION=8.9.0, EXPOSE 8080 8443, ENTRYPOINT suitecrm/entrypoint.sh, CMD suitecrm/run.sh, no USER (root by default)", srcSuiteDockerfile},
			{"user", "non-root works as any UID with group 0: " + base + ", /bitnami/suitecrm and tmp are daemon:root 775/664; the pod runs as 1001:0 (fsGroup 0)", srcSuitePostunpack},
			{"persistence", "on every start restore_persisted_app replaces " + base + " with a link to /bitnami/suitecrm, which needs /opt/bitnami writable by group 0: the 8.9.0 Dockerfile does not make it so, unlike the 8/debian-11 one, and SuiteCRM 8 as uid 1001 was reported failing there, so the published image stops as the operator's non-root pod (rm: cannot remove '" + base + "'): set spec.product.image to a build FROM it with RUN chmod g+rwX /opt/bitnami; the real node runs the published layout's stand-in (it stops) and the derived one's (it serves)", srcSuitePersist},
			{"ports", "apache setup refuses a port below 1024 to a non-root user (\"privileged port requested\", exit 1) whatever the kernel allows: Apache listens on 8080 (APACHE_HTTP_PORT_NUMBER) and 8443", srcSuiteApache},
			{"https", "SUITECRM_ENABLE_HTTPS=yes aborts the first start: suitecrm_pass_wizard declares url_port read-only and assigns it again (lines 363, 365); the SMTP step calls ${protocol}://127.0.0.1:${APACHE_HTTP_PORT_NUMBER} (lines 287-292), TLS on the plain port with yes: the operator sets no, TLS ends at the Ingress", srcSuiteLib},
			{"install", "the entrypoint runs setup only when $1 is run.sh: installs on the first start (suitecrm:app:install), later restores the persisted installation from /bitnami/suitecrm", srcSuiteRun + "; " + srcSuiteLib},
			{"env", "SUITECRM_DATABASE_HOST/_PORT_NUMBER/_NAME/_USER/_PASSWORD, SUITECRM_USERNAME/_PASSWORD, SUITECRM_HOST, SUITECRM_ENABLE_HTTPS", srcSuiteLib},
			{"site URL", "the installer writes --site_host=${url_protocol}://${SUITECRM_HOST}:${url_port} (url_port from APACHE_HTTP_PORT_NUMBER) into public/legacy/config.php once, and nothing rewrites it (SUITECRM_HOST: \"only used during the first initialization\"); legacy SuiteCRM reads config_override.php after config.php on every request: the scheduler writes site_url there from the environment's URL on every start", srcSuiteLib + "; " + srcSuiteOverride},
			{"cron", "cron starts only as root (run.sh: \"Cron will not be started because of running as a non-root user\"); the job is php public/legacy/cron.php every minute: the scheduler component runs it", srcSuiteRun + "; " + srcSuiteLib},
			{"mail", "SUITECRM_SMTP_HOST/_PORT_NUMBER/_USER/_PASSWORD/_PROTOCOL (ssl|tls)/_NOTIFY_ADDRESS, applied by the installation wizard on the first start", srcSuiteLib},
			{"upgrade", "a new image restores the persisted installation; SuiteCRM's own upgrade package is not run by the image: a user's spec.migration runs it", srcSuiteLib},
			{"database", "the image bundles Bitnami's MariaDB client (mysql-client-12.0.2) and reaches MariaDB with SUITECRM_DATABASE_*: the operator runs MariaDB " + mariaDBVersion, srcSuiteDockerfile},
		},
	}
}

// espoCRM: the official image espocrm/espocrm (EspoCRM 10). The entrypoint
// installs or migrates only when its first argument is apache2* or php-fpm;
// the volumes are data, custom and client/custom under /var/www/html (a
// volume at /var/www/html itself is the "legacy" layout it refuses to
// start from empty).
func espoCRM() Profile {
	// The entrypoint's own install/migrate, then `apache2ctl -v` exits.
	installOrMigrate := Run{Args: []string{"apache2ctl", "-v"}}
	return Profile{
		Product: crmv1alpha1.ProductEspoCRM, Image: "docker.io/espocrm/espocrm", DefaultVersion: "10.0.3",
		Port: 80, UID: 33, GID: 33, Engine: crmv1alpha1.DatabaseMariaDB,
		Files: []FilesMount{
			{Path: "/var/www/html/data", SubPath: "data"},
			{Path: "/var/www/html/custom", SubPath: "custom"},
			{Path: "/var/www/html/client/custom", SubPath: "client-custom"},
		},
		TmpPaths:   []string{"/tmp", "/var/run/apache2", "/var/lock/apache2"},
		HealthPath: "/",
		// The full path does not match apache2*: Apache starts without the
		// entrypoint migrating on its own (the promotion's backup comes first).
		App:         Run{Args: []string{"/usr/local/bin/apache2-foreground"}},
		Prepare:     &Run{Command: []string{"/bin/sh", "-c", "mkdir -p " + PrepareFilesDir + "/data " + PrepareFilesDir + "/custom " + PrepareFilesDir + "/client-custom"}},
		Init:        &installOrMigrate,
		Upgrade:     &installOrMigrate,
		UpgradePath: oneMajorAtATime("EspoCRM", 10),
		// Before 10.0.3 the entrypoint installs or migrates on every start,
		// whatever the command: the application would migrate before the
		// promotion's backup.
		MinVersion: "10.0.3",
		Env: func(c Connection) []corev1.EnvVar {
			vars := []corev1.EnvVar{
				env("ESPOCRM_DATABASE_PLATFORM", "Mysql"),
				env("ESPOCRM_DATABASE_HOST", c.DatabaseHost),
				env("ESPOCRM_DATABASE_PORT", strconv.Itoa(int(c.DatabasePort))),
				env("ESPOCRM_DATABASE_NAME", c.DatabaseName),
				env("ESPOCRM_DATABASE_USER", c.DatabaseUser),
				c.passwordEnv("ESPOCRM_DATABASE_PASSWORD"),
				env("ESPOCRM_ADMIN_USERNAME", AdminUser),
				secretEnv("ESPOCRM_ADMIN_PASSWORD", c.SecretName, SecretAdminPassword),
				env("ESPOCRM_SITE_URL", c.SiteURL),
				// ESPOCRM_SITE_URL is written at install only; siteUrl from
				// ESPOCRM_CONFIG_SITE_URL is written again by every init and
				// upgrade Job and every daemon and websocket start, so a
				// changed host or a restored copy of another environment
				// links to this one.
				env("ESPOCRM_CONFIG_SITE_URL", c.SiteURL),
				env("ESPOCRM_CONFIG_USE_WEB_SOCKET", "true"),
				// The websocket component binds 7777; the application and the
				// daemon submit to it through its Service.
				env("ESPOCRM_CONFIG_WEB_SOCKET_ZERO_M_Q_SUBSCRIBER_DSN", "tcp://*:7777"),
				env("ESPOCRM_CONFIG_WEB_SOCKET_ZERO_M_Q_SUBMISSION_DSN", fmt.Sprintf("tcp://%s-websocket:7777", c.EnvName)),
			}
			if u := webSocketURL(c.SiteURL); u != "" {
				vars = append(vars, env("ESPOCRM_CONFIG_WEB_SOCKET_URL", u))
			}
			return vars
		},
		MailEnv: func(m Mail) []corev1.EnvVar {
			security, auth := "", "false"
			if m.TLS {
				security = "TLS"
			}
			if m.Username != nil {
				auth = "true"
			}
			return []corev1.EnvVar{
				env("ESPOCRM_CONFIG_SMTP_SERVER", m.Host), env("ESPOCRM_CONFIG_SMTP_PORT", strconv.Itoa(int(m.Port))),
				env("ESPOCRM_CONFIG_SMTP_AUTH", auth), env("ESPOCRM_CONFIG_SMTP_SECURITY", security),
				optionalSecretEnv("ESPOCRM_CONFIG_SMTP_USERNAME", m.Username), optionalSecretEnv("ESPOCRM_CONFIG_SMTP_PASSWORD", m.Password),
				env("ESPOCRM_CONFIG_OUTBOUND_EMAIL_FROM_ADDRESS", m.From),
			}
		},
		Components: []Component{
			{Name: "daemon", Run: Run{Command: []string{"docker-daemon.sh"}}},
			{Name: "websocket", Run: Run{Command: []string{"docker-websocket.sh"}}, Ports: []int32{8080, 7777}, IngressPath: "/ws"},
		},
		Facts: []Fact{
			personalFilesFact(crmv1alpha1.ProductEspoCRM),
			{"start path", "docker-entrypoint.sh (set -euo pipefail): setEnvironments (ESPOCRM_* defaults, <VAR>_FILE); when $1 is apache2* or php-fpm: warnInsecureCredentials, warnLegacyInstallation, start (install when config:get isInstalled is not true: config:populate, setPermissions, database.*, db:check, rebuild, create-admin-user, set-password, siteUrl, app-check, isInstalled; else migrate: db:check, clear-cache, migrate, setPermissions), applyConfigEnv; then exec \"$@\". The application runs /usr/local/bin/apache2-foreground (no setup); the init and upgrade Jobs run apache2ctl -v through the setup", srcEspoEntrypoint},
			{"image", "espocrm/espocrm 10.0.3 (php:8.4-apache-trixie), WORKDIR /var/www/html, ENTRYPOINT docker-entrypoint.sh, CMD apache2-foreground; data, custom, client/custom owned by www-data (33)", srcEspoDockerfile},
			{"volumes", "mount /var/www/html/data, /var/www/html/custom and /var/www/html/client/custom separately; a volume at /var/www/html is the legacy layout and an empty one aborts the start (\"Container startup aborted\")", srcEspoEntrypoint},
			{"permissions", "setPermissions runs chown -R www-data:www-data on the three directories under set -e: they must be owned by 33, so a prepare step creates them in the volume as 33 (fsGroup 33, OnRootMismatch)", srcEspoEntrypoint},
			{"install and migrate", "only when $1 is apache2* or php-fpm: install on an empty installation, else `bin/command migrate` (the upgrade); then ESPOCRM_CONFIG_* are written with config:set", srcEspoEntrypoint},
			{"application", "php:8.4-apache installs apache2-foreground as /usr/local/bin/apache2-foreground (STOPSIGNAL SIGWINCH, Apache on 80): started by that path the entrypoint skips its install and migrate, as uid 33 with the unprivileged-port sysctl", "docker-library/php@445bf41 8.4/trixie/apache/Dockerfile"},
			{"env", "ESPOCRM_DATABASE_PLATFORM/_HOST/_PORT/_NAME/_USER/_PASSWORD, ESPOCRM_ADMIN_USERNAME/_PASSWORD, ESPOCRM_SITE_URL; ESPOCRM_CONFIG_<NAME> sets config parameter <name> (camelCase, __ for nesting)", srcEspoEntrypoint},
			{"components", "docker-daemon.sh (job daemon) and docker-websocket.sh (php websocket.php, port 8080) exit until `bin/command app-check` passes, then apply ESPOCRM_CONFIG_*", srcEspoDaemon},
			{"websocket", "the application submits to the websocket server over ZeroMQ (webSocketZeroMQSubmissionDsn, tcp://<websocket>:7777); the browser connects to webSocketUrl: set to ws(s)://<host>/ws, routed to port 8080", srcEspoDaemon},
			{"mail", "config parameters smtpServer, smtpPort, smtpAuth, smtpSecurity, smtpUsername, smtpPassword, outboundEmailFromAddress, set through ESPOCRM_CONFIG_*", srcEspoConfig},
			{"site URL", "ESPOCRM_SITE_URL is written as siteUrl by actionInstall only (line 206); ESPOCRM_CONFIG_SITE_URL becomes siteUrl in applyConfigEnv, run after install or migrate (line 354) and by docker-daemon.sh and docker-websocket.sh on every start once app-check passes (lines 133-134): the operator sets both", srcEspoEntrypoint + "; " + srcEspoDaemon},
			{"versions", "10.0.3 and later: the guard that installs or migrates only when $1 is apache2* or php-fpm (docker-entrypoint.sh lines 348-355) arrived in 10.0.3 (espocrm/espocrm-docker@a070180, released by c748146); 10.0.0-10.0.2 (ecb7fe0, caf4061, 5aca01b) install or migrate and chown on every start, whatever the command", srcEspoEntrypoint},
			{"secrets", "the entrypoint passes the database password to `bin/command config:set` as an argument (lines 185-190), which takes a value beginning with - for an option and fails: generated secrets are hex", srcEspoEntrypoint},
			{"files owner", "setPermissions (chown -R www-data:www-data data custom client/custom, lines 229-231) runs under set -euo pipefail in install and migrate: as uid 33 it fails on files another user owns, so restores extract the files as 33:33", srcEspoEntrypoint},
			{"database", "the documented compose file runs mariadb:latest with healthcheck.sh --connect --innodb_initialized (the operator's readiness probe): the operator runs MariaDB " + mariaDBVersion, "espocrm/espocrm-docker@c748146 README.md"},
		},
	}
}

// odooConf writes the configuration file the image reads ($ODOO_RC) from
// the environment: the database (so no password is on a command line: the
// entrypoint and wait-for-psql.py read db_* from this file), a single
// database with the database manager off, the master password and, when a
// mail server is set, SMTP: Odoo casts smtp_port to an integer as it loads
// the file, so an empty value would stop every odoo command. Then, once the
// database has Odoo's tables, the public URL (odooSiteURL).
const odooConf = `set -eu
umask 077
{
cat <<EOF
[options]
addons_path = /mnt/extra-addons
data_dir = /var/lib/odoo
db_host = $HOST
db_port = $PORT
db_user = $USER
db_password = $PASSWORD
db_name = $ODOO_DATABASE
dbfilter = ^$ODOO_DATABASE\$
list_db = False
proxy_mode = True
without_demo = all
admin_passwd = $ODOO_MASTER_PASSWORD
EOF
if [ -n "${ODOO_SMTP_SERVER:-}" ]; then
cat <<EOF
smtp_server = $ODOO_SMTP_SERVER
smtp_port = $ODOO_SMTP_PORT
smtp_ssl = $ODOO_SMTP_SSL
smtp_user = ${ODOO_SMTP_USER:-False}
smtp_password = ${ODOO_SMTP_PASSWORD:-False}
email_from = $ODOO_EMAIL_FROM
EOF
fi
} > "$ODOO_RC"
` + odooSiteURL

// odooSiteURL stores the environment's URL as Odoo's web.base.url, frozen
// so that an administrator's login from another address does not replace
// it, before every start and after the init Job installed base: a restored
// copy of another environment, or a changed host, links to this one. SQL
// (the key is unique) before the application runs, so no cache holds the
// old value. Nothing to do while the database has no Odoo tables yet.
const odooSiteURL = `export PGHOST="$HOST" PGPORT="$PORT" PGUSER="$USER" PGPASSWORD="$PASSWORD" PGDATABASE="$ODOO_DATABASE"
for _ in $(seq 60); do psql -tAc 'SELECT 1' >/dev/null 2>&1 && break; sleep 2; done
if [ "$(psql -tAc "SELECT to_regclass('ir_config_parameter') IS NOT NULL")" = t ]; then
  psql -q -v ON_ERROR_STOP=1 -v url="$ODOO_SITE_URL" <<'SQL'
INSERT INTO ir_config_parameter (key, value, create_uid, write_uid, create_date, write_date)
VALUES ('web.base.url', :'url', 1, 1, now(), now()), ('web.base.url.freeze', 'True', 1, 1, now(), now())
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, write_date = now();
SQL
  echo "web.base.url is $ODOO_SITE_URL"
fi
`

// odooInit installs the base module into the empty database the operator
// created, once (a database with base installed is left alone: -i base
// again would reload base's data), then sets the admin user's password from
// the credentials Secret and the public URL on every run, so that a run
// after one whose password step failed finishes it.
const odooInit = `set -e
export PGHOST="$HOST" PGPORT="$PORT" PGUSER="$USER" PGPASSWORD="$PASSWORD" PGDATABASE="$ODOO_DATABASE"
if [ "$(psql -tAc "SELECT 1 FROM ir_module_module WHERE name = 'base' AND state = 'installed'" 2>/dev/null)" = 1 ]; then
  echo "database $ODOO_DATABASE is initialized"
else
  /entrypoint.sh odoo -d "$ODOO_DATABASE" -i base --without-demo=all --stop-after-init --no-http
fi
printf '%s\n' "env.ref('base.user_admin').write({'password': __import__('os').environ['ADMIN_PASSWORD']})" "env.cr.commit()" \
  | /entrypoint.sh odoo shell -d "$ODOO_DATABASE" --no-http
` + odooSiteURL

// odoo: the official image odoo (https://github.com/odoo/docker).
func odoo() Profile {
	return Profile{
		Product: crmv1alpha1.ProductOdoo, Image: "docker.io/library/odoo", DefaultVersion: "18.0",
		Port: 8069, UID: 100, GID: 101, Home: "/var/lib/odoo", Engine: crmv1alpha1.DatabasePostgreSQL,
		Files:    []FilesMount{{Path: "/var/lib/odoo"}},
		TmpPaths: []string{"/tmp", "/run/odoo"}, ReadOnlyRootFilesystem: true,
		HealthPath:  "/web/health",
		App:         Run{Args: []string{"odoo"}},
		Prepare:     &Run{Command: []string{"/bin/sh", "-c", odooConf}},
		Init:        &Run{Command: []string{"/bin/bash", "-c", odooInit}},
		Upgrade:     &Run{Args: []string{"odoo", "-d", "$(ODOO_DATABASE)", "-u", "all", "--stop-after-init", "--no-http"}},
		UpgradePath: sameMajor("Odoo", "-u all updates modules within a series; a new series (17.0 to 18.0) needs Odoo's upgrade service or OpenUpgrade first"),
		Env: func(c Connection) []corev1.EnvVar {
			return []corev1.EnvVar{
				env("HOST", c.DatabaseHost),
				env("PORT", strconv.Itoa(int(c.DatabasePort))),
				env("USER", c.DatabaseUser),
				c.passwordEnv("PASSWORD"),
				env("ODOO_RC", "/run/odoo/odoo.conf"),
				env("ODOO_DATABASE", c.DatabaseName),
				secretEnv("ODOO_MASTER_PASSWORD", c.SecretName, SecretAppSecret),
				secretEnv("ADMIN_PASSWORD", c.SecretName, SecretAdminPassword),
				env("ODOO_SITE_URL", c.SiteURL),
			}
		},
		MailEnv: func(m Mail) []corev1.EnvVar {
			ssl := "False"
			if m.TLS {
				ssl = "True"
			}
			return []corev1.EnvVar{
				env("ODOO_SMTP_SERVER", m.Host), env("ODOO_SMTP_PORT", strconv.Itoa(int(m.Port))), env("ODOO_SMTP_SSL", ssl),
				optionalSecretEnv("ODOO_SMTP_USER", m.Username), optionalSecretEnv("ODOO_SMTP_PASSWORD", m.Password),
				env("ODOO_EMAIL_FROM", m.From),
			}
		},
		Facts: []Fact{
			personalFilesFact(crmv1alpha1.ProductOdoo),
			{"start path", "the operator's prepare step writes $ODOO_RC and the public URL; /entrypoint.sh (set -e) takes HOST, PORT, USER, PASSWORD and adds --db_* the file lacks; for odoo, -- or -*: wait-for-psql.py (the file's db_* first, the database named postgres, 30 s), then odoo: the configuration loaded and typed at import, sessions under data_dir, the server (or -i/-u with --stop-after-init, or shell)", srcOdooEntrypoint + "; " + srcOdoo18Config},
			{"image", "odoo 18.0 (ubuntu:noble, Odoo's nightly .deb), USER odoo, ENTRYPOINT /entrypoint.sh, CMD odoo, ENV ODOO_RC=/etc/odoo/odoo.conf, VOLUME /var/lib/odoo /mnt/extra-addons, EXPOSE 8069 8071 8072, postgresql-client installed", srcOdooDockerfile},
			{"user", "the .deb's system user odoo is uid 100, group odoo gid 101 (users is 100), home /var/lib/odoo: the pod runs as 100:101 with HOME=/var/lib/odoo", srcOdooDockerfile},
			{"database", "the entrypoint reads HOST, PORT, USER, PASSWORD and passes --db_host/--db_port/--db_user/--db_password only when $1 is odoo, -- or -* and the key is not in $ODOO_RC; wait-for-psql.py reads $ODOO_RC first", srcOdooEntrypoint},
			{"configuration", "the image's odoo.conf sets addons_path = /mnt/extra-addons and data_dir = /var/lib/odoo; admin_passwd defaults to admin and list_db to True", srcOdooConf},
			{"options", "admin_passwd exists only in the configuration file (default 'admin'); --no-database-list (list_db), -i/--init, -u/--update, --without-demo, --stop-after-init, --no-http, --smtp/--smtp-port/--smtp-ssl/--smtp-user/--smtp-password/--email-from", srcOdooOptions},
			{"init", "a database created empty (POSTGRES_DB) is not initialized: Odoo installs base only with -i base; the init Job runs it once through the entrypoint", srcOdooOptions},
			{"upgrade", "-u all --stop-after-init updates the installed modules to the new build; a new series needs a migrated database", srcOdooOptions},
			{"mail", "smtp_server, smtp_port, smtp_ssl, smtp_user, smtp_password, email_from in the configuration file (ir.mail_server records in the database take precedence; anonymized copies deactivate them)", srcOdooOptions},
			{"configuration types", "18.0 casts the file's values of typed options as it is imported, so an empty smtp_port stops every odoo command (application, init, shell, upgrade): the mail lines are written only when a mail server is set; sessions/ under data_dir must be writable", srcOdoo18Config},
			{"site URL", "web.base.url is set by every administrator's login to the address it came from unless web.base.url.freeze is set: before every start and after the init Job, the operator writes the environment's URL with freeze (SQL, key unique) once the table exists", srcOdoo18URL},
			{"external database", "wait-for-psql.py and Odoo connect to the database named postgres, and with dbfilter see only databases the role owns: an external server must allow both", srcOdoo18DB},
			{"admin password", "the init Job installs base once and sets the admin password with `odoo shell` on every run (the shell rolls back unless the input commits), so a run after a failed password step finishes it", "odoo 18.0 odoo/cli/shell.py lines 65-68 (exec of piped input), 124 (cr.rollback()); gzambrano27/odoo18@a13276fd"},
			{"database", "the image installs the newest postgresql-client from apt.postgresql.org (its pg_dump reads any server version): the operator runs PostgreSQL " + postgresVersion, srcOdooDockerfile},
		},
	}
}

// twenty: the official image twentycrm/twenty.
func twenty() Profile {
	twentyEnv := func(c Connection) []corev1.EnvVar {
		return []corev1.EnvVar{
			c.passwordEnv("PG_DATABASE_PASSWORD"),
			// Kubernetes expands $(VAR) from variables defined before it.
			env("PG_DATABASE_URL", fmt.Sprintf("postgres://%s:$(PG_DATABASE_PASSWORD)@%s:%d/%s", c.DatabaseUser, c.DatabaseHost, c.DatabasePort, c.DatabaseName)),
			secretEnv("REDIS_PASSWORD", c.SecretName, SecretRedisPassword),
			env("REDIS_URL", fmt.Sprintf("redis://:$(REDIS_PASSWORD)@%s:%d", c.RedisHost, Redis.Port)),
			env("SERVER_URL", c.SiteURL),
			secretEnv("APP_SECRET", c.SecretName, SecretAppSecret),
			env("STORAGE_TYPE", "local"),
			// The entrypoint migrates on start unless this is true: the
			// operator runs migrations in the init Job and in the
			// promotion's migration slot, after the backup.
			env("DISABLE_DB_MIGRATIONS", "true"),
			// Telemetry is on by default (events to twenty-telemetry.com):
			// a customer's CRM reports nothing to its makers.
			env("TELEMETRY_ENABLED", "false"),
			env("YARN_ENABLE_TELEMETRY", "0"),
			// Settings stored from the admin panel would override these
			// variables (mail, storage, telemetry): the manifests stay
			// authoritative.
			env("IS_CONFIG_VARIABLES_IN_DB_ENABLED", "false"),
		}
	}
	migrate := Run{Args: []string{"true"}, Env: []corev1.EnvVar{env("DISABLE_DB_MIGRATIONS", "false")}}
	return Profile{
		Product: crmv1alpha1.ProductTwenty, Image: "docker.io/twentycrm/twenty", DefaultVersion: "v1.8.0",
		Port: 3000, UID: 1000, GID: 1000, Home: "/tmp", Engine: crmv1alpha1.DatabasePostgreSQL, NeedsRedis: true,
		Files:    []FilesMount{{Path: "/app/packages/twenty-server/.local-storage"}},
		TmpPaths: []string{"/tmp", "/app/docker-data"}, ReadOnlyRootFilesystem: true,
		HealthPath:  "/healthz",
		Init:        &migrate,
		Upgrade:     &migrate,
		UpgradePath: oneMinorAtATime("Twenty"),
		Env:         twentyEnv,
		MailEnv: func(m Mail) []corev1.EnvVar {
			noTLS := "true"
			if m.TLS {
				noTLS = "false"
			}
			return []corev1.EnvVar{
				env("EMAIL_DRIVER", "smtp"), env("EMAIL_SMTP_HOST", m.Host), env("EMAIL_SMTP_PORT", strconv.Itoa(int(m.Port))),
				env("EMAIL_SMTP_NO_TLS", noTLS),
				optionalSecretEnv("EMAIL_SMTP_USER", m.Username), optionalSecretEnv("EMAIL_SMTP_PASSWORD", m.Password),
				env("EMAIL_FROM_ADDRESS", m.From), env("EMAIL_SYSTEM_ADDRESS", m.From),
			}
		},
		Components: []Component{{
			Name: "worker", Run: Run{Args: []string{"yarn", "worker:prod"}},
			ExtraEnv: func(Connection, string) []corev1.EnvVar {
				return []corev1.EnvVar{env("DISABLE_CRON_JOBS_REGISTRATION", "true")}
			},
		}},
		Facts: []Fact{
			personalFilesFact(crmv1alpha1.ProductTwenty),
			{"start path", "/app/entrypoint.sh (set -e): setup_and_migrate_db (unless DISABLE_DB_MIGRATIONS=true: the URL split with awk, the database through postgres, setup-db and database:migrate:prod on an empty one, command:prod upgrade), register_background_jobs (unless DISABLE_CRON_JOBS_REGISTRATION=true; a failure warns), exec \"$@\": node dist/src/main (the server, /healthz on 3000), yarn worker:prod (the worker) or the Jobs' true", srcTwentyEntry},
			{"image", "twentycrm/twenty: USER 1000, WORKDIR /app/packages/twenty-server, ENTRYPOINT /app/entrypoint.sh, CMD node dist/src/main", srcTwentyDocker},
			{"migrations", "setup_and_migrate_db returns at once when DISABLE_DB_MIGRATIONS is exactly true (line 14); otherwise it creates the database through the postgres database, runs setup-db.ts and database:migrate:prod on an empty one and `yarn command:prod upgrade` always: the application runs with true, the init and upgrade Jobs with false", srcTwentyEntry},
			{"cron", "register_background_jobs returns when DISABLE_CRON_JOBS_REGISTRATION is exactly true (line 46), a failure only warns; the server reads neither DISABLE_ variable: the server registers the cron jobs, the worker (compose: yarn worker:prod) does not", srcTwentyEntry + "; " + srcTwentyCompose},
			{"docker-data", "entrypoints before 2025-05 ran the migrations once and touched /app/docker-data/db_status; the v1.8 one writes nothing there: an emptyDir stays for older versions", srcTwentyEntryOld},
			{"read-only root", "the server rewrites dist/front/index.html with the front end's configuration; on a read-only root the write fails with EROFS, is caught and logged, and the front end takes the page's origin for the API", srcTwentyFront},
			{"database password", "the entrypoint splits PG_DATABASE_URL with awk: a password holding : @ / or ? breaks it; the operator's generated passwords are hex", srcTwentyEntry},
			{"home", "yarn and tsx run in the entrypoint and the worker and write under $HOME: HOME=/tmp (an emptyDir) with the read-only root", srcTwentyEntry},
			{"processes", "server on 3000 answering /healthz; worker `yarn worker:prod` with DISABLE_DB_MIGRATIONS=true; attachments in /app/packages/twenty-server/.local-storage", srcTwentyCompose},
			{"env", "PG_DATABASE_URL, REDIS_URL, SERVER_URL, APP_SECRET, STORAGE_TYPE (local), NODE_PORT 3000", srcTwentyConfig},
			{"mail", "EMAIL_DRIVER (logger by default; smtp), EMAIL_SMTP_HOST, EMAIL_SMTP_PORT, EMAIL_SMTP_NO_TLS, EMAIL_SMTP_USER, EMAIL_SMTP_PASSWORD, EMAIL_FROM_ADDRESS, EMAIL_SYSTEM_ADDRESS", srcTwentyConfig},
			{"telemetry", "TELEMETRY_ENABLED defaults to true and posts self-hosting events to twenty-telemetry.com: the operator sets false (and YARN_ENABLE_TELEMETRY=0); IS_CONFIG_VARIABLES_IN_DB_ENABLED defaults to true, letting values stored from the admin panel override the environment: the operator sets false", srcTwentyTelemetry},
			{"upgrade", "upgrades go one minor version at a time, each running `command:prod upgrade`", srcTwentyUpgrade},
			{"database", "the documented compose file runs postgres:16 and redis: the operator runs PostgreSQL " + postgresVersion + " and Redis " + redisVersion, srcTwentyCompose},
		},
	}
}

// custom: any image, configured from spec.product. The operator passes the
// database as DATABASE_HOST/_PORT/_NAME/_USER/_PASSWORD and DATABASE_URL,
// the site as SITE_URL, the admin password as ADMIN_PASSWORD and the mail
// server as SMTP_HOST/_PORT/_USERNAME/_PASSWORD/_FROM; spec.product.env adds
// the rest. The image must run as a non-root user (uid 1000) and answer
// healthPath (default /).
func custom(p crmv1alpha1.Product) Profile {
	scheme := "postgres"
	if p.DatabaseEngine == crmv1alpha1.DatabaseMariaDB {
		scheme = "mysql"
	}
	extra := p.Env
	return Profile{
		Product: crmv1alpha1.ProductCustom, Image: p.Image, Port: 8080, UID: 1000, GID: 1000, Engine: p.DatabaseEngine,
		TmpPaths: []string{"/tmp"}, HealthPath: "/",
		Env: func(c Connection) []corev1.EnvVar {
			vars := []corev1.EnvVar{
				env("DATABASE_HOST", c.DatabaseHost),
				env("DATABASE_PORT", strconv.Itoa(int(c.DatabasePort))),
				env("DATABASE_NAME", c.DatabaseName),
				env("DATABASE_USER", c.DatabaseUser),
				c.passwordEnv("DATABASE_PASSWORD"),
				env("DATABASE_URL", fmt.Sprintf("%s://%s:$(DATABASE_PASSWORD)@%s:%d/%s", scheme, c.DatabaseUser, c.DatabaseHost, c.DatabasePort, c.DatabaseName)),
				env("SITE_URL", c.SiteURL),
				secretEnv("ADMIN_PASSWORD", c.SecretName, SecretAdminPassword),
			}
			return append(vars, extra...)
		},
		MailEnv: func(m Mail) []corev1.EnvVar {
			return []corev1.EnvVar{
				env("SMTP_HOST", m.Host), env("SMTP_PORT", strconv.Itoa(int(m.Port))),
				optionalSecretEnv("SMTP_USERNAME", m.Username), optionalSecretEnv("SMTP_PASSWORD", m.Password),
				env("SMTP_FROM", m.From), env("SMTP_TLS", strconv.FormatBool(m.TLS)),
			}
		},
		Facts: []Fact{{"contract", "the variables above, a non-root user 1000, healthPath; nothing else is assumed of the image", "spec.product of the ImplementationProject"}},
	}
}

// webSocketURL is where a browser reaches EspoCRM's websocket component:
// the site's host at /ws (the Ingress routes it), ws or wss as the site.
// Empty when the site has no public host (no Ingress).
func webSocketURL(siteURL string) string {
	switch {
	case strings.Contains(siteURL, ".svc:") || siteURL == "":
		return ""
	case strings.HasPrefix(siteURL, "https://"):
		return "wss://" + strings.TrimPrefix(siteURL, "https://") + "/ws"
	default:
		return "ws://" + strings.TrimPrefix(siteURL, "http://") + "/ws"
	}
}
