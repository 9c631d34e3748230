package crm

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// suiteCRM: SuiteCRM 8 has no maintained upstream image any more. The default
// is Bitnami's, documented at https://github.com/bitnami/containers/tree/main/bitnami/suitecrm
// and archived under bitnamilegacy/ since Bitnami stopped publishing free
// images; override spec.product.image with a maintained build for production.
// It reads SUITECRM_DATABASE_HOST/_PORT_NUMBER/_NAME/_USER/_PASSWORD,
// SUITECRM_USERNAME/_PASSWORD for the admin and SUITECRM_HOST, serves on
// 8080 as uid 1001 and keeps its state under /bitnami/suitecrm.
func suiteCRM() Profile {
	return Profile{
		Product: crmv1alpha1.ProductSuiteCRM, Image: "docker.io/bitnamilegacy/suitecrm", DefaultVersion: "8.8.0",
		Port: 8080, UID: 1001, Engine: crmv1alpha1.DatabaseMariaDB,
		FilesPath: "/bitnami/suitecrm", TmpPaths: []string{"/tmp"},
		HealthPath: "/",
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
			}
		},
		Source: "https://github.com/bitnami/containers/tree/main/bitnami/suitecrm",
	}
}

// espoCRM: the official image espocrm/espocrm (https://github.com/espocrm/espocrm-docker,
// https://docs.espocrm.com/administration/docker/installation/). It reads
// ESPOCRM_DATABASE_PLATFORM/_HOST/_PORT/_NAME/_USER/_PASSWORD,
// ESPOCRM_ADMIN_USERNAME/_PASSWORD and ESPOCRM_SITE_URL; Apache serves on 80
// as www-data (uid 33) from /var/www/html, which holds the installation and
// uploads. The image documents two more processes from the same image and
// volume: the job daemon (entrypoint docker-daemon.sh) and the websocket
// server (entrypoint docker-websocket.sh, port 8080, fed over ZeroMQ on 7777).
func espoCRM() Profile {
	return Profile{
		Product: crmv1alpha1.ProductEspoCRM, Image: "docker.io/espocrm/espocrm", DefaultVersion: "9.1.8",
		Port: 80, UID: 33, Engine: crmv1alpha1.DatabaseMariaDB,
		FilesPath: "/var/www/html", TmpPaths: []string{"/tmp", "/var/run/apache2", "/var/lock/apache2"},
		HealthPath: "/",
		Env: func(c Connection) []corev1.EnvVar {
			return []corev1.EnvVar{
				env("ESPOCRM_DATABASE_PLATFORM", "Mysql"),
				env("ESPOCRM_DATABASE_HOST", c.DatabaseHost),
				env("ESPOCRM_DATABASE_PORT", strconv.Itoa(int(c.DatabasePort))),
				env("ESPOCRM_DATABASE_NAME", c.DatabaseName),
				env("ESPOCRM_DATABASE_USER", c.DatabaseUser),
				c.passwordEnv("ESPOCRM_DATABASE_PASSWORD"),
				env("ESPOCRM_ADMIN_USERNAME", AdminUser),
				secretEnv("ESPOCRM_ADMIN_PASSWORD", c.SecretName, SecretAdminPassword),
				env("ESPOCRM_SITE_URL", c.SiteURL),
				env("ESPOCRM_CONFIG_USE_WEB_SOCKET", "true"),
			}
		},
		Components: []Component{
			{Name: "daemon", Command: []string{"docker-daemon.sh"}},
			{
				Name: "websocket", Command: []string{"docker-websocket.sh"}, Port: 8080, IngressPath: "/ws",
				ExtraEnv: func(c Connection, envName string) []corev1.EnvVar {
					return []corev1.EnvVar{
						env("ESPOCRM_CONFIG_WEB_SOCKET_ZERO_M_Q_SUBSCRIBER_DSN", "tcp://*:7777"),
						env("ESPOCRM_CONFIG_WEB_SOCKET_ZERO_M_Q_SUBMISSION_DSN", fmt.Sprintf("tcp://%s-websocket:7777", envName)),
					}
				},
			},
		},
		Source: "https://github.com/espocrm/espocrm-docker",
	}
}

// odoo: the official image odoo (https://hub.docker.com/_/odoo). Its
// entrypoint reads HOST, PORT, USER and PASSWORD for PostgreSQL; Odoo serves
// on 8069 as the odoo user (uid 101) and keeps its filestore in
// /var/lib/odoo. /web/health answers since Odoo 16.
func odoo() Profile {
	return Profile{
		Product: crmv1alpha1.ProductOdoo, Image: "docker.io/library/odoo", DefaultVersion: "18.0",
		Port: 8069, UID: 101, Engine: crmv1alpha1.DatabasePostgreSQL,
		FilesPath: "/var/lib/odoo", TmpPaths: []string{"/tmp"}, ReadOnlyRootFilesystem: true,
		HealthPath: "/web/health",
		// Kubernetes expands $(ODOO_DATABASE) from the variable below.
		Args: []string{"odoo", "--database=$(ODOO_DATABASE)", "--db-filter=^$(ODOO_DATABASE)$", "--proxy-mode"},
		Env: func(c Connection) []corev1.EnvVar {
			return []corev1.EnvVar{
				env("HOST", c.DatabaseHost),
				env("PORT", strconv.Itoa(int(c.DatabasePort))),
				env("USER", c.DatabaseUser),
				c.passwordEnv("PASSWORD"),
				env("ODOO_DATABASE", c.DatabaseName),
			}
		},
		Source: "https://hub.docker.com/_/odoo",
	}
}

// twenty: the official image twentycrm/twenty
// (https://twenty.com/developers/section/self-hosting/docker-compose). The
// server reads PG_DATABASE_URL, REDIS_URL, SERVER_URL and APP_SECRET, serves
// on 3000 with /healthz, runs as uid 1000 and stores attachments under
// /app/packages/twenty-server/.local-storage; a worker runs `yarn worker:prod`
// from the same image with migrations and cron registration disabled.
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
		}
	}
	return Profile{
		Product: crmv1alpha1.ProductTwenty, Image: "docker.io/twentycrm/twenty", DefaultVersion: "v1.8.0",
		Port: 3000, UID: 1000, Engine: crmv1alpha1.DatabasePostgreSQL, NeedsRedis: true,
		FilesPath: "/app/packages/twenty-server/.local-storage", TmpPaths: []string{"/tmp"}, ReadOnlyRootFilesystem: true,
		HealthPath: "/healthz",
		Env:        twentyEnv,
		Components: []Component{{
			Name: "worker", Command: []string{"yarn", "worker:prod"},
			ExtraEnv: func(Connection, string) []corev1.EnvVar {
				return []corev1.EnvVar{env("DISABLE_DB_MIGRATIONS", "true"), env("DISABLE_CRON_JOBS_REGISTRATION", "true")}
			},
		}},
		Source: "https://twenty.com/developers/section/self-hosting/docker-compose",
	}
}

// custom: any image, configured from spec.product. The operator passes the
// database as DATABASE_HOST/_PORT/_NAME/_USER/_PASSWORD and DATABASE_URL,
// the site as SITE_URL, and the admin password as ADMIN_PASSWORD; spec.product.env
// adds the rest. The image must run as a non-root user (uid 1000 unless the
// image's USER is numeric) and answer healthPath (default /).
func custom(p crmv1alpha1.Product) Profile {
	scheme := "postgres"
	if p.DatabaseEngine == crmv1alpha1.DatabaseMariaDB {
		scheme = "mysql"
	}
	extra := p.Env
	return Profile{
		Product: crmv1alpha1.ProductCustom, Image: p.Image, Port: 8080, UID: 1000, Engine: p.DatabaseEngine,
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
		Source: "spec.product of the ImplementationProject",
	}
}
