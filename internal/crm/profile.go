// Package crm holds each CRM product's contract with its image: user and
// group, ports, the environment variables its entrypoint really reads,
// writable and persistent paths, probes, install and upgrade steps,
// components, mail settings and supported upgrade paths. Pure data and
// functions; every fact cites the image source it was read from (Facts,
// rendered as docs/products.md).
package crm

import (
	"fmt"
	"net/url"

	corev1 "k8s.io/api/core/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// Keys of the credentials Secret the operator generates once per environment.
const (
	SecretDatabasePassword = "database-password"
	SecretDatabaseRootPass = "database-root-password"
	SecretAdminPassword    = "admin-password"
	SecretAppSecret        = "app-secret"
	SecretRedisPassword    = "redis-password"
	// SecretMailPassword is the mail catcher's web password (user admin):
	// its own, so that reading caught mail gives no way into the CRM.
	SecretMailPassword = "mail-password"
)

// SecretKeys are the keys of the credentials Secret, all generated at random.
var SecretKeys = []string{SecretDatabasePassword, SecretDatabaseRootPass, SecretAdminPassword, SecretAppSecret, SecretRedisPassword, SecretMailPassword}

// AdminUser is the initial administrator's user name of every product.
const AdminUser = "admin"

// DatabaseName and DatabaseUser name the application's database and user.
const (
	DatabaseName = "crm"
	DatabaseUser = "crm"
)

// Connection is what the application needs to know to reach its database,
// Redis, and itself. Passwords are never values here: env vars reference the
// credentials Secret.
type Connection struct {
	DatabaseHost string
	DatabasePort int32
	DatabaseName string
	DatabaseUser string
	// DatabasePassword is the Secret key holding the database password: the
	// generated credentials, or an external database's Secret.
	DatabasePassword corev1.SecretKeySelector
	RedisHost        string // empty when the product needs no Redis
	SiteURL          string
	// EnvName names the environment; components are reached at <EnvName>-<component>.
	EnvName string
	// Mail is where the application sends e-mail.
	Mail Mail
	// SecretName is the generated credentials Secret (admin password, app secret).
	SecretName string
}

func (c Connection) passwordEnv(name string) corev1.EnvVar {
	ref := c.DatabasePassword
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &ref}}
}

// Component is a process of the product run as its own Deployment next to
// the web application (e.g. a job daemon, a websocket server, a scheduler).
type Component struct {
	// Name is appended to the environment's name, e.g. "worker".
	Name string
	// Run replaces the image's entrypoint (Command) or passes it
	// arguments (Args only).
	Run
	// Ports the component listens on; a Service exposes them. The first
	// is the one IngressPath routes to.
	Ports []int32
	// ExtraEnv is added to the application's environment.
	ExtraEnv func(c Connection, envName string) []corev1.EnvVar
	// IngressPath routes this path of the environment's host to the component.
	IngressPath string
}

// Run is how a container of the product starts. An empty Command keeps the
// image's entrypoint, so that what the entrypoint sets up (database
// arguments, persisted configuration, permissions) is in place; Args are
// then the entrypoint's arguments.
type Run struct {
	Command []string
	Args    []string
	// Env overrides the product's environment for this run.
	Env []corev1.EnvVar
}

// FilesMount is one mount of the environment's files volume. SubPath is a
// directory of the volume ("" mounts its root).
type FilesMount struct {
	Path    string
	SubPath string
}

// Mail is where an environment's application sends e-mail: a production
// SMTP server from a Secret, or the environment's mail catcher.
type Mail struct {
	Host string
	Port int32
	// Username and Password are Secret keys; nil when the server takes no login.
	Username, Password *corev1.SecretKeySelector
	// From is the sender address.
	From string
	// TLS is true when the server expects STARTTLS/TLS (never for the catcher).
	TLS bool
}

// Fact is one line of a product's contract with the image: what the
// operator relies on, and the source that shows it.
type Fact struct {
	Topic, Fact, Source string
}

// Database describes the database server an engine runs on.
type Database struct {
	Engine  crmv1alpha1.DatabaseEngine
	Image   string
	Version string
	Port    int32
	// DataPath is where the server keeps its data (mounted from the data PVC).
	DataPath string
	// RunPaths are writable paths the server needs besides its data (sockets, tmp).
	RunPaths []string
	// UID the official image runs its server as.
	UID int64
	// Env configures the official image's first start (database, user, passwords).
	Env func(secretName string) []corev1.EnvVar
	// Ready is the readiness probe command.
	Ready []string
}

// Profile is one CRM product: its contract with the image, taken from the
// image's own sources (Facts).
type Profile struct {
	Product        crmv1alpha1.ProductName
	Image          string
	DefaultVersion string
	Port           int32
	// UID and GID the image's processes run as (not root).
	UID, GID int64
	// Home is set as HOME when the image's user has no writable home.
	Home   string
	Engine crmv1alpha1.DatabaseEngine
	// NeedsRedis runs a Redis next to the database.
	NeedsRedis bool
	// Files are the mounts of the files volume (uploads, attachments,
	// filestore, configuration). Empty: nothing to keep.
	Files []FilesMount
	// TmpPaths are writable scratch paths (emptyDir) so that the root
	// filesystem can stay read-only.
	TmpPaths []string
	// ReadOnlyRootFilesystem is true when the image runs with a read-only root.
	ReadOnlyRootFilesystem bool
	// HealthPath answers 2xx when the application is healthy.
	HealthPath string
	// App is how the web application starts.
	App Run
	// Prepare runs before every container of the product (an init
	// container with the same environment), e.g. to write a configuration
	// file from the environment. The files volume's root is at PrepareFilesDir.
	Prepare *Run
	// Init runs once, as a Job, before the application first starts: it
	// installs the product into the empty database. It must be idempotent.
	Init *Run
	// Upgrade runs, in the promotion's migration slot, when the version
	// changes: the product's own schema and data upgrade.
	Upgrade *Run
	// MinVersion is the first version the contract holds for.
	MinVersion string
	// UpgradePath says whether from -> to is one supported upgrade step.
	UpgradePath func(from, to string) error
	// Env is what the image reads to find its database, admin and site URL.
	Env func(c Connection) []corev1.EnvVar
	// MailEnv is what the image reads to send e-mail.
	MailEnv func(m Mail) []corev1.EnvVar
	// Components are extra processes, each its own Deployment.
	Components []Component
	// Facts are the contract's lines with their sources.
	Facts []Fact
}

// PrepareFilesDir is where a Prepare step finds the files volume's root.
const PrepareFilesDir = "/crm-files"

// HasFiles reports whether the product keeps files in a volume.
func (p Profile) HasFiles() bool { return len(p.Files) > 0 }

// secretEnv reads key of the credentials Secret into the variable name.
func secretEnv(name, secretName, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Key: key},
	}}
}

func env(name, value string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: value} }

// optionalSecretEnv reads a Secret key that may be absent (an SMTP login);
// nil leaves the variable out (an unnamed variable, dropped by MailVars).
func optionalSecretEnv(name string, ref *corev1.SecretKeySelector) corev1.EnvVar {
	if ref == nil {
		return corev1.EnvVar{}
	}
	r := *ref
	r.Optional = ptrTrue()
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &r}}
}

func ptrTrue() *bool { t := true; return &t }

// For returns the profile of the project's product: a known product's
// profile with the project's overrides applied, or one built from the spec
// of a custom product.
func For(p crmv1alpha1.Product) (Profile, error) {
	var prof Profile
	switch p.Name {
	case crmv1alpha1.ProductSuiteCRM:
		prof = suiteCRM()
	case crmv1alpha1.ProductEspoCRM:
		prof = espoCRM()
	case crmv1alpha1.ProductOdoo:
		prof = odoo()
	case crmv1alpha1.ProductTwenty:
		prof = twenty()
	case crmv1alpha1.ProductCustom:
		if p.Image == "" || p.DatabaseEngine == "" {
			return Profile{}, fmt.Errorf("a custom product needs spec.product.image and spec.product.databaseEngine")
		}
		prof = custom(p)
	default:
		return Profile{}, fmt.Errorf("unknown product %q", p.Name)
	}
	if p.Image != "" {
		prof.Image = p.Image
	}
	if p.Port != 0 {
		prof.Port = p.Port
	}
	if p.HealthPath != "" {
		prof.HealthPath = p.HealthPath
	}
	if extra := p.Env; len(extra) > 0 && p.Name != crmv1alpha1.ProductCustom { // custom appends its own
		own := prof.Env
		prof.Env = func(c Connection) []corev1.EnvVar { return append(own(c), extra...) }
	}
	return prof, nil
}

// OwnedEnv lists the variables the operator sets for a product, which
// spec.product.env may not override (a CRD rule refuses them).
func OwnedEnv(p crmv1alpha1.Product) []string {
	p.Env = nil
	prof, err := For(p)
	if err != nil {
		return nil
	}
	var names []string
	seen := map[string]bool{}
	add := func(vars []corev1.EnvVar) {
		for _, v := range vars {
			if !seen[v.Name] {
				seen[v.Name] = true
				names = append(names, v.Name)
			}
		}
	}
	add(prof.Env(Connection{SiteURL: "https://owned.example"}))
	if prof.MailEnv != nil {
		add(prof.MailEnv(Mail{Username: &corev1.SecretKeySelector{}, Password: &corev1.SecretKeySelector{}}))
	}
	for _, c := range prof.Components {
		if c.ExtraEnv != nil {
			add(c.ExtraEnv(Connection{}, "env"))
		}
	}
	return names
}

// The database and Redis servers the operator runs for a new environment;
// an existing one keeps the version it was created with (status.databaseVersion).
// The real node's stand-ins run the same majors: Debian trixie's PostgreSQL
// 17 and MariaDB 11.8 (hack/real-node-images.sh).
const (
	postgresVersion = "17.9"
	mariaDBVersion  = "11.8"
	redisVersion    = "7.4"
)

// DatabaseFor returns the database server of an engine: the official images,
// which run as a non-root user and create the database and user on first start.
func DatabaseFor(engine crmv1alpha1.DatabaseEngine) Database {
	if engine == crmv1alpha1.DatabasePostgreSQL {
		// https://hub.docker.com/_/postgres: POSTGRES_DB/USER/PASSWORD, PGDATA; uid 999.
		return Database{
			Engine: engine, Image: "postgres", Version: postgresVersion, Port: 5432,
			DataPath: "/var/lib/postgresql/data", RunPaths: []string{"/var/run/postgresql", "/tmp"}, UID: 999,
			Env: func(secret string) []corev1.EnvVar {
				return []corev1.EnvVar{
					env("POSTGRES_DB", DatabaseName), env("POSTGRES_USER", DatabaseUser),
					secretEnv("POSTGRES_PASSWORD", secret, SecretDatabasePassword),
					// A subdirectory: the volume's root holds lost+found on many filesystems.
					env("PGDATA", "/var/lib/postgresql/data/pgdata"),
				}
			},
			Ready: []string{"pg_isready", "-h", "127.0.0.1", "-U", DatabaseUser, "-d", DatabaseName},
		}
	}
	// https://hub.docker.com/_/mariadb: MARIADB_DATABASE/USER/PASSWORD/ROOT_PASSWORD;
	// healthcheck.sh ships in the image; uid 999.
	return Database{
		Engine: crmv1alpha1.DatabaseMariaDB, Image: "mariadb", Version: mariaDBVersion, Port: 3306,
		DataPath: "/var/lib/mysql", RunPaths: []string{"/run/mysqld", "/tmp"}, UID: 999,
		Env: func(secret string) []corev1.EnvVar {
			return []corev1.EnvVar{
				env("MARIADB_DATABASE", DatabaseName), env("MARIADB_USER", DatabaseUser),
				secretEnv("MARIADB_PASSWORD", secret, SecretDatabasePassword),
				secretEnv("MARIADB_ROOT_PASSWORD", secret, SecretDatabaseRootPass),
			}
		},
		Ready: []string{"healthcheck.sh", "--connect", "--innodb_initialized"},
	}
}

// Redis is the Redis server for products that need one
// (https://hub.docker.com/_/redis; uid 999).
var Redis = struct {
	Image, Version string
	Port           int32
	UID            int64
}{Image: "redis", Version: redisVersion, Port: 6379, UID: 999}

// Image returns the image reference of a version: repository:version, or the
// repository alone when it already names a tag or digest.
func Image(repository, version string) string {
	if version == "" || hasTagOrDigest(repository) {
		return repository
	}
	return repository + ":" + version
}

func hasTagOrDigest(ref string) bool {
	for i := len(ref) - 1; i >= 0; i-- {
		switch ref[i] {
		case '@', ':':
			return true
		case '/':
			return false
		}
	}
	return false
}

// siteHost returns the host of a site URL, for products that want it alone.
func siteHost(siteURL string) string {
	u, err := url.Parse(siteURL)
	if err != nil || u.Host == "" {
		return siteURL
	}
	return u.Hostname()
}

// MailVars are the product's variables for the mail server m.
func (p Profile) MailVars(m Mail) []corev1.EnvVar {
	if p.MailEnv == nil {
		return nil
	}
	var vars []corev1.EnvVar
	for _, v := range p.MailEnv(m) {
		if v.Name != "" {
			vars = append(vars, v)
		}
	}
	return vars
}
