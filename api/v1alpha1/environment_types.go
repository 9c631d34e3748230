package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of an Environment.
const (
	// ConditionDatabaseReady is True when the environment's database answers.
	ConditionDatabaseReady = "DatabaseReady"
	// ConditionApplicationReady is True when the application is rolled out and ready.
	ConditionApplicationReady = "ApplicationReady"
	// ConditionInitialized is True once the product's installation (or the
	// upgrade to the version that runs) completed in the database.
	ConditionInitialized = "Initialized"
	// ConditionBootstrapped is True when spec.bootstrap's backup was restored
	// (and anonymized, when asked).
	ConditionBootstrapped = "Bootstrapped"
	// ConditionAnonymized is True when the restored copy was anonymized.
	ConditionAnonymized = "Anonymized"
)

// Stage is the role an environment plays in the project.
// +kubebuilder:validation:Enum=test;staging;production;training
type Stage string

// The stages.
const (
	StageTest       Stage = "test"
	StageStaging    Stage = "staging"
	StageProduction Stage = "production"
	StageTraining   Stage = "training"
)

// EnvironmentPhase summarises an environment's state for people and scripts.
// +kubebuilder:validation:Enum=Provisioning;Ready;Degraded;Hibernated;Deleting
type EnvironmentPhase string

// The environment phases.
const (
	EnvironmentProvisioning EnvironmentPhase = "Provisioning"
	EnvironmentReady        EnvironmentPhase = "Ready"
	EnvironmentDegraded     EnvironmentPhase = "Degraded"
	EnvironmentHibernated   EnvironmentPhase = "Hibernated"
	EnvironmentDeleting     EnvironmentPhase = "Deleting"
)

// DeletionPolicy says what happens to an environment's data when it is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

// The deletion policies.
const (
	// DeletionRetain keeps the volumes (and so the data) after the environment is deleted.
	DeletionRetain DeletionPolicy = "Retain"
	// DeletionDelete deletes the volumes with the environment.
	DeletionDelete DeletionPolicy = "Delete"
)

// EnvironmentStorage sizes the environment's volumes.
type EnvironmentStorage struct {
	// DataSize of the database volume. Defaults to 10Gi.
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="dataSize must be positive"
	// +optional
	DataSize *resource.Quantity `json:"dataSize,omitempty"`
	// FilesSize of the application's files volume (uploads, attachments). Defaults to 5Gi.
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="filesSize must be positive"
	// +optional
	FilesSize *resource.Quantity `json:"filesSize,omitempty"`
	// StorageClassName overrides the project's storage class for this environment.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	StorageClassName string `json:"storageClassName,omitempty"`
	// FilesAccessMode of the files volume. ReadWriteOnce (the default) works
	// on every storage class: the application's pods, components and Jobs
	// that share the volume run on one node. ReadWriteMany spreads them, on
	// a class that supports it (NFS, CephFS, EFS, Azure Files).
	// +kubebuilder:validation:Enum=ReadWriteOnce;ReadWriteMany
	// +optional
	FilesAccessMode corev1.PersistentVolumeAccessMode `json:"filesAccessMode,omitempty"`
}

// ExternalDatabase points at a database the operator does not run.
type ExternalDatabase struct {
	// SecretName of a Secret in the project namespace with the keys host, port,
	// database, username and password.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +required
	SecretName string `json:"secretName"`
	// ServerVersion is the database server's version (e.g. "17" or "11.8"):
	// backup, restore and erasure Jobs run the database image of that tag
	// (postgres:17), so that pg_dump is never older than the server. Unset:
	// the operator's default image (postgres:17.9, mariadb:11.8); an agent
	// that finds the server newer than its tools refuses, naming both.
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+){0,2}$`
	// +optional
	ServerVersion string `json:"serverVersion,omitempty"`
}

// EnvironmentDatabase configures the environment's database.
type EnvironmentDatabase struct {
	// External uses an existing database instead of one the operator runs.
	// +optional
	External *ExternalDatabase `json:"external,omitempty"`
}

// EnvironmentIngress exposes the environment over HTTP(S).
type EnvironmentIngress struct {
	// Host name. Defaults to <environment>.<project>.<hosting.domain> when the
	// project has a domain.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Host string `json:"host,omitempty"`
	// TLSSecretName of a Secret holding the certificate for the host; enables TLS.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	TLSSecretName string `json:"tlsSecretName,omitempty"`
}

// MaintenanceWindow is when disruptive changes (promotions) may start.
type MaintenanceWindow struct {
	// Schedule of the windows' starts, as a cron expression (UTC).
	// +required
	Schedule CronSchedule `json:"schedule"`
	// Duration of each window, e.g. "2h".
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(([0-9]+(h|m|s|ms))+|[0-9]{1,5}d)$') || (self.endsWith('d') ? int(self.substring(0, self.size() - 1)) * 86400 : duration(self).getSeconds()) >= 60 && (self.endsWith('d') ? int(self.substring(0, self.size() - 1)) * 86400 : duration(self).getSeconds()) <= 604800",message="duration must be between 1m and 168h (7d)"
	// +required
	Duration Duration `json:"duration"`
}

// BackupSource names a Backup to start the environment from.
type BackupSource struct {
	// Name of the Backup in the project namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`
}

// Bootstrap fills a new environment with data from a backup.
type Bootstrap struct {
	// FromBackup restores the named Backup into the new environment.
	// +required
	FromBackup BackupSource `json:"fromBackup"`
	// Anonymize the restored data (names, e-mail addresses, phone numbers, notes)
	// before the environment becomes Ready. Required for production data in a
	// non-production environment when the project's GDPR policy says so.
	// +optional
	Anonymize bool `json:"anonymize,omitempty"`
}

// EnvironmentSpec is one complete CRM instance of a project.
// +kubebuilder:validation:XValidation:rule="!has(self.bootstrap) || !has(self.bootstrap.anonymize) || !self.bootstrap.anonymize || self.stage != 'production'",message="bootstrap.anonymize is not allowed for a production environment",fieldPath=".bootstrap.anonymize"
// +kubebuilder:validation:XValidation:rule="has(oldSelf.bootstrap) == has(self.bootstrap) && (!has(self.bootstrap) || self.bootstrap == oldSelf.bootstrap)",message="bootstrap is immutable: it applies only when the environment is created",fieldPath=".bootstrap"
type EnvironmentSpec struct {
	// ProjectRef names the ImplementationProject; the environment must be in the
	// project's namespace.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="projectRef is immutable"
	// +required
	ProjectRef ProjectReference `json:"projectRef"`
	// Stage is the environment's role: test, staging, production or training.
	// Immutable.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="stage is immutable"
	// +required
	Stage Stage `json:"stage"`
	// Version of the product to install first. Defaults to the project's
	// product version. Afterwards promotions change what runs; see status.version.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`
	// +optional
	Version string `json:"version,omitempty"`
	// Image runs this full image reference instead of the project's image at
	// spec.version (an increment built as its own image). Production changes
	// it, like spec.version, only through promotions.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+([._/:@-][A-Za-z0-9_]+)*$`
	// +optional
	Image string `json:"image,omitempty"`
	// Replicas of the application. Defaults to 1.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=50
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// Resources of the application container. Defaults come from the product profile.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// Storage sizes the environment's volumes.
	// +optional
	Storage EnvironmentStorage `json:"storage,omitempty"`
	// Database configures the environment's database; absent, the operator runs one.
	// +optional
	Database EnvironmentDatabase `json:"database,omitempty"`
	// Ingress exposes the environment; absent, it is reachable only in-cluster.
	// +optional
	Ingress *EnvironmentIngress `json:"ingress,omitempty"`
	// Hibernate scales the application and database to zero, keeping the data.
	// +optional
	Hibernate bool `json:"hibernate,omitempty"`
	// DeletionPolicy says what happens to the data when the environment is
	// deleted: Retain keeps the volumes, Delete removes them. Defaults to Retain
	// for production and Delete for the other stages.
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
	// MaintenanceWindow restricts when promotions may start in this environment.
	// +optional
	MaintenanceWindow *MaintenanceWindow `json:"maintenanceWindow,omitempty"`
	// Bootstrap fills the new environment from a backup. Immutable.
	// +optional
	Bootstrap *Bootstrap `json:"bootstrap,omitempty"`
	// Backup overrides the project's backup schedule and retention for this environment.
	// +optional
	Backup *EnvironmentBackup `json:"backup,omitempty"`
	// Mail overrides where this environment's e-mail goes. Outside
	// production only a project with mail.allowRealMailOutsideProduction
	// may name a real server; otherwise the mail catcher gets everything.
	// +optional
	Mail *EnvironmentMail `json:"mail,omitempty"`
}

// EnvironmentMail is an environment's mail server.
type EnvironmentMail struct {
	// SMTP is the real mail server this environment sends through.
	// +optional
	SMTP *SMTPServer `json:"smtp,omitempty"`
}

// EnvironmentBackup overrides the project's backup policy for one environment.
type EnvironmentBackup struct {
	// Schedule of scheduled backups (cron, UTC); overrides the project's.
	// +optional
	Schedule CronSchedule `json:"schedule,omitempty"`
	// Retention overrides the project's; the GDPR maxBackupAge still caps it.
	// +optional
	Retention *BackupRetention `json:"retention,omitempty"`
}

// BackupReference names a completed backup.
type BackupReference struct {
	// Name of the Backup.
	Name string `json:"name"`
	// CompletedAt is when it completed.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
}

// EnvironmentStatus is what the operator observed of the environment.
type EnvironmentStatus struct {
	// Phase summarises the state: Provisioning, Ready, Degraded, Hibernated, Deleting.
	// +optional
	Phase EnvironmentPhase `json:"phase,omitempty"`
	// Conditions: DatabaseReady, Initialized, ApplicationReady, Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// URL the environment is reached at.
	// +optional
	URL string `json:"url,omitempty"`
	// Version of the product the environment runs.
	// +optional
	Version string `json:"version,omitempty"`
	// Image the application runs.
	// +optional
	Image string `json:"image,omitempty"`
	// DatabaseVersion is the version of the database server the operator
	// runs for the environment: its default when the database was created.
	// An operator release with a newer default keeps it, since a data
	// directory does not start under another major version; backup and
	// restore Jobs use the same version's tools.
	// +optional
	DatabaseVersion string `json:"databaseVersion,omitempty"`
	// MailURL is where the environment's caught mail is read (non-production).
	// +optional
	MailURL string `json:"mailURL,omitempty"`
	// SchemaVersion is the version the product's installation or upgrade
	// step last completed for; the application starts only at that version.
	// +optional
	SchemaVersion string `json:"schemaVersion,omitempty"`
	// CurrentIncrement is the last Increment rolled out here.
	// +optional
	CurrentIncrement string `json:"currentIncrement,omitempty"`
	// LastBackup is the newest completed backup of the environment.
	// +optional
	LastBackup *BackupReference `json:"lastBackup,omitempty"`
	// LastScheduleTime is the schedule slot of the last scheduled backup.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// NextScheduleTime is when the next scheduled backup is due.
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`
}

// Environment is one complete CRM instance of a project (test, staging,
// production or training): application, database, storage, ingress, backups
// and network isolation.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=crmenv,categories=crm
// +kubebuilder:printcolumn:name="Project",type=string,JSONPath=`.spec.projectRef.name`,priority=1
// +kubebuilder:printcolumn:name="Stage",type=string,JSONPath=`.spec.stage`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.version`
// +kubebuilder:printcolumn:name="Increment",type=string,JSONPath=`.status.currentIncrement`,priority=1
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`
// +kubebuilder:printcolumn:name="Database",type=string,JSONPath=`.status.databaseVersion`,priority=1
// +kubebuilder:printcolumn:name="Last-Backup",type=date,JSONPath=`.status.lastBackup.completedAt`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 40 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label of at most 40 characters: it prefixes the names of the environment's objects"
type Environment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired environment.
	// +required
	Spec EnvironmentSpec `json:"spec"`
	// Status is what the operator observed.
	// +optional
	Status EnvironmentStatus `json:"status,omitempty"`
}

// EnvironmentList is a list of Environments.
//
// +kubebuilder:object:root=true
type EnvironmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Environment `json:"items"`
}

func init() {
	register(&Environment{}, &EnvironmentList{})
}
