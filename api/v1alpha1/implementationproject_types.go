package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of an ImplementationProject.
const (
	// ConditionCompliant is True when every object of the project satisfies its
	// GDPR and backup policy; when False its message lists the violations.
	ConditionCompliant = "Compliant"
	// ConditionBudgetExceeded is True when the delivered and accepted hours
	// pass spec.budgetHours; False with reason WithinBudget,
	// NearlyExhausted (90 % or more) or NoBudget otherwise.
	ConditionBudgetExceeded = "BudgetExceeded"
)

// Reasons of condition BudgetExceeded.
const (
	BudgetOver            = "OverBudget"
	BudgetNearlyExhausted = "NearlyExhausted"
	BudgetWithin          = "WithinBudget"
	BudgetNone            = "NoBudget"
)

// ProductName is one of the CRM products the operator knows how to run.
// +kubebuilder:validation:Enum=suitecrm;espocrm;odoo;twenty;custom
type ProductName string

// The CRM products.
const (
	ProductSuiteCRM ProductName = "suitecrm"
	ProductEspoCRM  ProductName = "espocrm"
	ProductOdoo     ProductName = "odoo"
	ProductTwenty   ProductName = "twenty"
	ProductCustom   ProductName = "custom"
)

// DatabaseEngine is the database a CRM product runs on.
// +kubebuilder:validation:Enum=postgresql;mariadb
type DatabaseEngine string

// The database engines.
const (
	DatabasePostgreSQL DatabaseEngine = "postgresql"
	DatabaseMariaDB    DatabaseEngine = "mariadb"
)

// HostingMode says where the project's environments run.
// +kubebuilder:validation:Enum=cloud;onPrem
type HostingMode string

// The hosting modes.
const (
	HostingCloud  HostingMode = "cloud"
	HostingOnPrem HostingMode = "onPrem"
)

// Customer identifies the customer the CRM is implemented for.
type Customer struct {
	// Name of the customer organisation, as shown to people.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +required
	Name string `json:"name"`
	// Contact is the customer's contact for this implementation (e-mail address or name).
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Contact string `json:"contact,omitempty"`
}

// Product selects the CRM product, its version and, for custom images, how to run it.
// +kubebuilder:validation:XValidation:rule="self.name != 'custom' || has(self.image)",message="image is required when name is custom",fieldPath=".image"
// +kubebuilder:validation:XValidation:rule="self.name != 'custom' || has(self.databaseEngine)",message="databaseEngine is required when name is custom",fieldPath=".databaseEngine"
// +kubebuilder:validation:XValidation:rule="self.name == 'custom' || !has(self.databaseEngine)",message="databaseEngine may be set only for a custom product: the other products have a fixed engine",fieldPath=".databaseEngine"
// +kubebuilder:validation:XValidation:rule="!has(self.env) || self.env.all(e, !(e.name in (self.name == 'suitecrm' ? ['SUITECRM_DATABASE_HOST', 'SUITECRM_DATABASE_PORT_NUMBER', 'SUITECRM_DATABASE_NAME', 'SUITECRM_DATABASE_USER', 'SUITECRM_DATABASE_PASSWORD', 'SUITECRM_USERNAME', 'SUITECRM_PASSWORD', 'SUITECRM_HOST', 'SUITECRM_ENABLE_HTTPS', 'APACHE_HTTP_PORT_NUMBER', 'APACHE_HTTPS_PORT_NUMBER', 'SUITECRM_SMTP_HOST', 'SUITECRM_SMTP_PORT_NUMBER', 'SUITECRM_SMTP_USER', 'SUITECRM_SMTP_PASSWORD', 'SUITECRM_SMTP_PROTOCOL', 'SUITECRM_SMTP_NOTIFY_ADDRESS', 'SUITECRM_SITE_URL'] : self.name == 'espocrm' ? ['ESPOCRM_DATABASE_PLATFORM', 'ESPOCRM_DATABASE_HOST', 'ESPOCRM_DATABASE_PORT', 'ESPOCRM_DATABASE_NAME', 'ESPOCRM_DATABASE_USER', 'ESPOCRM_DATABASE_PASSWORD', 'ESPOCRM_ADMIN_USERNAME', 'ESPOCRM_ADMIN_PASSWORD', 'ESPOCRM_SITE_URL', 'ESPOCRM_CONFIG_USE_WEB_SOCKET', 'ESPOCRM_CONFIG_WEB_SOCKET_ZERO_M_Q_SUBSCRIBER_DSN', 'ESPOCRM_CONFIG_WEB_SOCKET_ZERO_M_Q_SUBMISSION_DSN', 'ESPOCRM_CONFIG_WEB_SOCKET_URL', 'ESPOCRM_CONFIG_SMTP_SERVER', 'ESPOCRM_CONFIG_SMTP_PORT', 'ESPOCRM_CONFIG_SMTP_AUTH', 'ESPOCRM_CONFIG_SMTP_SECURITY', 'ESPOCRM_CONFIG_SMTP_USERNAME', 'ESPOCRM_CONFIG_SMTP_PASSWORD', 'ESPOCRM_CONFIG_OUTBOUND_EMAIL_FROM_ADDRESS', 'ESPOCRM_CONFIG_SITE_URL'] : self.name == 'odoo' ? ['HOST', 'PORT', 'USER', 'PASSWORD', 'ODOO_RC', 'ODOO_DATABASE', 'ODOO_MASTER_PASSWORD', 'ADMIN_PASSWORD', 'ODOO_SMTP_SERVER', 'ODOO_SMTP_PORT', 'ODOO_SMTP_SSL', 'ODOO_SMTP_USER', 'ODOO_SMTP_PASSWORD', 'ODOO_EMAIL_FROM', 'ODOO_SITE_URL'] : self.name == 'twenty' ? ['PG_DATABASE_PASSWORD', 'PG_DATABASE_URL', 'REDIS_PASSWORD', 'REDIS_URL', 'SERVER_URL', 'APP_SECRET', 'STORAGE_TYPE', 'DISABLE_DB_MIGRATIONS', 'EMAIL_DRIVER', 'EMAIL_SMTP_HOST', 'EMAIL_SMTP_PORT', 'EMAIL_SMTP_NO_TLS', 'EMAIL_SMTP_USER', 'EMAIL_SMTP_PASSWORD', 'EMAIL_FROM_ADDRESS', 'EMAIL_SYSTEM_ADDRESS', 'DISABLE_CRON_JOBS_REGISTRATION', 'TELEMETRY_ENABLED', 'YARN_ENABLE_TELEMETRY', 'IS_CONFIG_VARIABLES_IN_DB_ENABLED'] : ['DATABASE_HOST', 'DATABASE_PORT', 'DATABASE_NAME', 'DATABASE_USER', 'DATABASE_PASSWORD', 'DATABASE_URL', 'SITE_URL', 'ADMIN_PASSWORD', 'SMTP_HOST', 'SMTP_PORT', 'SMTP_USERNAME', 'SMTP_PASSWORD', 'SMTP_FROM', 'SMTP_TLS'])))",message="env may not set a variable the operator sets for this product (database, administrator, site URL, internal wiring: see kubectl explain implementationproject.spec.product.env)",fieldPath=".env"
type Product struct {
	// Name of the CRM product: suitecrm, espocrm, odoo, twenty, or custom for any
	// other image. Immutable: a project does not change products in place.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="product.name is immutable"
	// +required
	Name ProductName `json:"name"`
	// Version of the product (an image tag). Defaults to the operator's tested
	// version of the product. Increments change the version environments run.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`
	// +optional
	Version string `json:"version,omitempty"`
	// Image repository to run (without tag, e.g. "registry.example.com/crm/app"),
	// or a full reference. Required for custom; for the other products it
	// overrides the default image, e.g. for a private mirror.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+([._/:@-][A-Za-z0-9_]+)*$`
	// +optional
	Image string `json:"image,omitempty"`
	// Port the application container listens on. Defaults to the product's port
	// (8080 for custom).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
	// DatabaseEngine of a custom product: postgresql or mariadb. The other products
	// have a fixed engine. Immutable.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="databaseEngine is immutable"
	// +optional
	DatabaseEngine DatabaseEngine `json:"databaseEngine,omitempty"`
	// HealthPath is the HTTP path answering 2xx when a custom application is
	// healthy. Defaults to "/" for custom; known products use their own.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^/[^\s]*$`
	// +optional
	HealthPath string `json:"healthPath,omitempty"`
	// Env adds environment variables to the application's containers (its
	// Deployment, its components and its migration Jobs), after the
	// product's own: settings the image reads (e.g. EspoCRM's
	// ESPOCRM_CONFIG_*, Odoo's ODOO_* of a custom entrypoint, SMTP settings).
	// Variables the operator sets for the product (database connection,
	// administrator, site URL, component wiring) are refused.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`
}

// Hosting says where and how the project's environments are hosted.
type Hosting struct {
	// Mode is cloud or onPrem. Defaults to cloud.
	// +kubebuilder:default=cloud
	// +optional
	Mode HostingMode `json:"mode,omitempty"`
	// Region the data is kept in (e.g. "eu-central-1"); pods are placed on nodes
	// labelled topology.kubernetes.io/region with this value.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Region string `json:"region,omitempty"`
	// StorageClassName for the environments' volumes, unless an environment names its own.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	StorageClassName string `json:"storageClassName,omitempty"`
	// IngressClassName for the environments' ingresses.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	IngressClassName string `json:"ingressClassName,omitempty"`
	// Domain under which environments get a host name: <environment>.<project>.<domain>,
	// unless an environment sets its own ingress host.
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Domain string `json:"domain,omitempty"`
}

// BackupRetention bounds how many backups are kept and for how long.
type BackupRetention struct {
	// KeepLast keeps at most this many completed backups per environment
	// (pre-promotion backups included); older ones are deleted with their data.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	KeepLast *int32 `json:"keepLast,omitempty"`
	// MaxAge deletes backups older than this, with their stored data (GDPR
	// storage limitation), e.g. "720h" for 30 days.
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(([0-9]+(h|m|s|ms))+|[0-9]{1,5}d)$') || (self.endsWith('d') ? int(self.substring(0, self.size() - 1)) * 86400 : duration(self).getSeconds()) >= 3600",message="maxAge must be at least 1h"
	// +optional
	MaxAge Duration `json:"maxAge,omitempty"`
}

// S3Target stores backups in an S3-compatible object store.
type S3Target struct {
	// Endpoint URL of the store, e.g. "https://s3.eu-central-1.amazonaws.com".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https?://[^\s/]+(/[^\s]*)?$`
	// +required
	Endpoint string `json:"endpoint"`
	// Bucket name.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]*[a-z0-9]$`
	// +required
	Bucket string `json:"bucket"`
	// Prefix of every object key; defaults to the project name.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!_.*'()/-]*$`
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// Region of the store, checked against the GDPR allowed regions when set.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Region string `json:"region,omitempty"`
	// SecretName of a Secret in the project namespace holding the keys
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +required
	SecretName string `json:"secretName"`
}

// VolumeTarget stores backups on a PersistentVolumeClaim in the project namespace.
type VolumeTarget struct {
	// ClaimName of the PersistentVolumeClaim.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +required
	ClaimName string `json:"claimName"`
}

// BackupTarget is where backups are stored: exactly one of s3 or volume.
// +kubebuilder:validation:XValidation:rule="has(self.s3) != has(self.volume)",message="set exactly one of s3 or volume"
type BackupTarget struct {
	// S3 stores backups in an S3-compatible object store.
	// +optional
	S3 *S3Target `json:"s3,omitempty"`
	// Volume stores backups on a PersistentVolumeClaim.
	// +optional
	Volume *VolumeTarget `json:"volume,omitempty"`
}

// BackupPolicy says when backups are taken, how long they are kept and where.
type BackupPolicy struct {
	// Schedule of scheduled backups of every environment, as a cron expression
	// (UTC). Without it only manual and pre-promotion backups are taken.
	// +optional
	Schedule CronSchedule `json:"schedule,omitempty"`
	// Retention of completed backups.
	// +optional
	Retention BackupRetention `json:"retention,omitempty"`
	// Target is where backups are stored.
	// +required
	Target BackupTarget `json:"target"`
}

// GDPRPolicy is the data-protection policy the cluster enforces for the project.
// +kubebuilder:validation:XValidation:rule="!has(self.requireEncryptedStorage) || !self.requireEncryptedStorage || size(self.?encryptedStorageClasses.orValue([])) > 0",message="requireEncryptedStorage needs at least one entry in encryptedStorageClasses",fieldPath=".encryptedStorageClasses"
type GDPRPolicy struct {
	// AllowedRegions lists the regions data may be kept in, as glob patterns
	// ("eu-*", "eu-central-1"). Empty allows every region.
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9*?-]+$`
	// +optional
	AllowedRegions []string `json:"allowedRegions,omitempty"`
	// RequireEncryptedStorage allows only the storage classes listed in
	// encryptedStorageClasses (encryption at rest).
	// +optional
	RequireEncryptedStorage bool `json:"requireEncryptedStorage,omitempty"`
	// EncryptedStorageClasses are the storage classes known to encrypt at rest.
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +optional
	EncryptedStorageClasses []string `json:"encryptedStorageClasses,omitempty"`
	// RequireTLS refuses environments whose ingress has no TLS.
	// +optional
	RequireTLS bool `json:"requireTLS,omitempty"`
	// MaxBackupAge caps backup retention: no backup is kept longer, e.g. "2160h" (90 days).
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(([0-9]+(h|m|s|ms))+|[0-9]{1,5}d)$') || (self.endsWith('d') ? int(self.substring(0, self.size() - 1)) * 86400 : duration(self).getSeconds()) >= 3600",message="maxBackupAge must be at least 1h"
	// +optional
	MaxBackupAge Duration `json:"maxBackupAge,omitempty"`
	// AnonymizeNonProduction requires production data copied into any other
	// environment to be anonymized.
	// +optional
	AnonymizeNonProduction bool `json:"anonymizeNonProduction,omitempty"`
}

// ProjectQuota caps what the project's namespace may use in total.
type ProjectQuota struct {
	// CPU the project's pods may request in total, e.g. "8".
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="cpu must be positive"
	// +optional
	CPU *resource.Quantity `json:"cpu,omitempty"`
	// Memory the project's pods may request in total, e.g. "16Gi".
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="memory must be positive"
	// +optional
	Memory *resource.Quantity `json:"memory,omitempty"`
	// Storage the project's volume claims may request in total, e.g. "500Gi".
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="storage must be positive"
	// +optional
	Storage *resource.Quantity `json:"storage,omitempty"`
}

// ImplementationProjectSpec is one customer's CRM implementation.
// +kubebuilder:validation:XValidation:rule="!has(self.backup) || !has(self.gdpr) || !has(self.backup.retention) || !has(self.backup.retention.maxAge) || !has(self.gdpr.maxBackupAge) || !self.backup.retention.maxAge.matches('^(([0-9]+(h|m|s|ms))+|[0-9]{1,5}d)$') || !self.gdpr.maxBackupAge.matches('^(([0-9]+(h|m|s|ms))+|[0-9]{1,5}d)$') || (self.backup.retention.maxAge.endsWith('d') ? int(self.backup.retention.maxAge.substring(0, self.backup.retention.maxAge.size() - 1)) * 86400 : duration(self.backup.retention.maxAge).getSeconds()) <= (self.gdpr.maxBackupAge.endsWith('d') ? int(self.gdpr.maxBackupAge.substring(0, self.gdpr.maxBackupAge.size() - 1)) * 86400 : duration(self.gdpr.maxBackupAge).getSeconds())",message="backup.retention.maxAge exceeds gdpr.maxBackupAge",fieldPath=".backup.retention.maxAge"
// +kubebuilder:validation:XValidation:rule="!has(self.gdpr) || !has(self.gdpr.requireEncryptedStorage) || !self.gdpr.requireEncryptedStorage || (has(self.hosting) && has(self.hosting.storageClassName) && has(self.gdpr.encryptedStorageClasses) && self.hosting.storageClassName in self.gdpr.encryptedStorageClasses)",message="hosting.storageClassName must be one of gdpr.encryptedStorageClasses while gdpr.requireEncryptedStorage is true (environments without a class of their own use it, never the cluster's default class)",fieldPath=".hosting.storageClassName"
// +kubebuilder:validation:XValidation:rule="!has(self.gdpr) || !has(self.gdpr.allowedRegions) || size(self.gdpr.allowedRegions) == 0 || (has(self.hosting) && has(self.hosting.region) && self.gdpr.allowedRegions.exists(p, self.hosting.region.matches('^' + p.replace('*', '.*').replace('?', '.') + '$')))",message="hosting.region must be set and inside gdpr.allowedRegions (data residency)",fieldPath=".hosting.region"
// +kubebuilder:validation:XValidation:rule="!has(self.gdpr) || !has(self.gdpr.allowedRegions) || size(self.gdpr.allowedRegions) == 0 || !has(self.backup) || !has(self.backup.target.s3) || (has(self.backup.target.s3.region) && self.gdpr.allowedRegions.exists(p, self.backup.target.s3.region.matches('^' + p.replace('*', '.*').replace('?', '.') + '$')))",message="backup.target.s3.region must be set and inside gdpr.allowedRegions (data residency)",fieldPath=".backup.target.s3.region"
type ImplementationProjectSpec struct {
	// Customer the CRM is implemented for.
	// +required
	Customer Customer `json:"customer"`
	// Product is the CRM product and version the project runs.
	// +required
	Product Product `json:"product"`
	// Hosting says where the environments run.
	// +optional
	Hosting Hosting `json:"hosting,omitempty"`
	// ProductOwners are the customer's people who accept or reject increments.
	// Only they may set an Increment's acceptance.
	// +required
	ProductOwners Subjects `json:"productOwners"`
	// Integrators are the implementation team: they manage the non-production
	// Environments, Increments, Backups and Restores. They may back up
	// production and read it, but not create, delete or re-point it, restore
	// into it or delete its backups (see administrators).
	// +optional
	Integrators *Subjects `json:"integrators,omitempty"`
	// Administrators alone may create and delete production-stage
	// Environments, change their protected fields (database, deletionPolicy;
	// version and image change only through promotions), restore into
	// production (a Restore with spec.confirm), delete production's Backups
	// and delete accepted Increments. They hold the integrators' rights too.
	// The API server enforces it (admission policy crm-production-protection).
	// Without administrators only cluster administrators may do these things.
	// +optional
	Administrators *Subjects `json:"administrators,omitempty"`
	// Stages are the names of the Environments an increment passes through, in
	// order; the last one is production. Defaults to [test, production].
	// +listType=set
	// +kubebuilder:default={test,production}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Stages []string `json:"stages,omitempty"`
	// Backup is the backup policy of every environment.
	// +optional
	Backup *BackupPolicy `json:"backup,omitempty"`
	// GDPR is the data-protection policy the cluster enforces.
	// +optional
	GDPR *GDPRPolicy `json:"gdpr,omitempty"`
	// Quota caps the resources of the project namespace.
	// +optional
	Quota *ProjectQuota `json:"quota,omitempty"`
	// BudgetHours is the backlog budget in hours; status.deliveredHours (hours
	// of promoted increments) and status.acceptedHours (accepted, not yet
	// promoted) count against it; condition BudgetExceeded says when they
	// pass it (reason NearlyExhausted from 90 %).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	BudgetHours *int32 `json:"budgetHours,omitempty"`
	// Paused halts promotions and scheduled work (backups, retention) for the
	// project; running environments keep running.
	// +optional
	Paused bool `json:"paused,omitempty"`
	// RestoreDatabaseOnRollback restores the pre-promotion backup when a
	// promotion whose migration already ran is rolled back, so that the
	// previous version finds the schema it expects. Writes since the backup
	// are lost, so it is off unless the project asks for it.
	// +optional
	RestoreDatabaseOnRollback bool `json:"restoreDatabaseOnRollback,omitempty"`
	// Mail says where the environments' e-mail goes: production through
	// mail.smtp, every other environment into its own mail catcher.
	// +optional
	Mail *MailPolicy `json:"mail,omitempty"`
}

// MailPolicy keeps a non-production CRM, whose data may be a copy of
// production, from mailing real people.
type MailPolicy struct {
	// SMTP is the mail server of the production environment (an
	// Environment's spec.mail.smtp overrides it).
	// +optional
	SMTP *SMTPServer `json:"smtp,omitempty"`
	// AllowRealMailOutsideProduction lets an environment other than
	// production send through its own spec.mail.smtp; without it such an
	// Environment is refused and its mail goes to the catcher.
	// +optional
	AllowRealMailOutsideProduction bool `json:"allowRealMailOutsideProduction,omitempty"`
}

// EnvironmentSummary is one environment as the project status shows it.
type EnvironmentSummary struct {
	// Name of the Environment.
	Name string `json:"name"`
	// Stage of the Environment.
	Stage Stage `json:"stage,omitempty"`
	// Phase of the Environment.
	Phase EnvironmentPhase `json:"phase,omitempty"`
	// Version the Environment runs.
	Version string `json:"version,omitempty"`
	// URL the Environment is reached at.
	URL string `json:"url,omitempty"`
}

// ProductionStatus tells what production runs.
type ProductionStatus struct {
	// Version production runs.
	Version string `json:"version,omitempty"`
	// Increment last promoted to production.
	Increment string `json:"increment,omitempty"`
	// PromotedAt is when that increment reached production.
	PromotedAt *metav1.Time `json:"promotedAt,omitempty"`
}

// ImplementationProjectStatus is what the operator observed of the project.
type ImplementationProjectStatus struct {
	// Conditions: Ready (every environment Ready), Compliant (no policy violation).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Namespace the project's environments and increments live in.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Environments of the project.
	// +listType=map
	// +listMapKey=name
	// +optional
	Environments []EnvironmentSummary `json:"environments,omitempty"`
	// Production tells what production runs.
	// +optional
	Production *ProductionStatus `json:"production,omitempty"`
	// DeliveredHours is the sum of the hours of the increments promoted to production.
	// +optional
	DeliveredHours int32 `json:"deliveredHours,omitempty"`
	// AcceptedHours is the sum of the hours of the increments a product
	// owner accepted that are not in production yet (nor rolled back or
	// failed): work the customer has signed off, owed against the budget.
	// +optional
	AcceptedHours int32 `json:"acceptedHours,omitempty"`
	// Blocks breaks delivered and accepted hours down by the changes' block
	// (epic, module, work package); changes without one are under "".
	// +listType=map
	// +listMapKey=block
	// +optional
	Blocks []BlockHours `json:"blocks,omitempty"`
}

// BlockHours is the hours of one block of the backlog.
type BlockHours struct {
	// Block of the backlog, as the increments' changes name it.
	// +required
	Block string `json:"block"`
	// DeliveredHours of its changes promoted to production.
	// +optional
	DeliveredHours int32 `json:"deliveredHours,omitempty"`
	// AcceptedHours of its changes accepted and not yet in production.
	// +optional
	AcceptedHours int32 `json:"acceptedHours,omitempty"`
}

// ImplementationProject is one customer's CRM implementation: the product, where
// it is hosted, who accepts increments, and the backup and GDPR policy. It owns
// a namespace of the same name holding its Environments and Increments.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=crmp,categories=crm
// +kubebuilder:printcolumn:name="Customer",type=string,JSONPath=`.spec.customer.name`
// +kubebuilder:printcolumn:name="Product",type=string,JSONPath=`.spec.product.name`
// +kubebuilder:printcolumn:name="Production",type=string,JSONPath=`.status.production.version`,description="Version production runs"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Compliant",type=string,JSONPath=`.status.conditions[?(@.type=="Compliant")].status`
// +kubebuilder:printcolumn:name="Delivered",type=integer,JSONPath=`.status.deliveredHours`,description="Hours promoted to production",priority=1
// +kubebuilder:printcolumn:name="Accepted",type=integer,JSONPath=`.status.acceptedHours`,description="Hours accepted, not yet in production",priority=1
// +kubebuilder:printcolumn:name="Budget",type=integer,JSONPath=`.spec.budgetHours`,description="Budget in hours",priority=1
// +kubebuilder:printcolumn:name="Over-Budget",type=string,JSONPath=`.status.conditions[?(@.type=="BudgetExceeded")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label (at most 63 lowercase letters, digits and '-'): it names the project namespace"
type ImplementationProject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired project.
	// +required
	Spec ImplementationProjectSpec `json:"spec"`
	// Status is what the operator observed.
	// +optional
	Status ImplementationProjectStatus `json:"status,omitempty"`
}

// ImplementationProjectList is a list of ImplementationProjects.
//
// +kubebuilder:object:root=true
type ImplementationProjectList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImplementationProject `json:"items"`
}

func init() {
	register(&ImplementationProject{}, &ImplementationProjectList{})
}
