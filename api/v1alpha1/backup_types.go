package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// BackupReason says why a backup was taken.
// +kubebuilder:validation:Enum=manual;scheduled;pre-promotion
type BackupReason string

// The backup reasons.
const (
	BackupManual       BackupReason = "manual"
	BackupScheduled    BackupReason = "scheduled"
	BackupPrePromotion BackupReason = "pre-promotion"
)

// BackupPhase is where a backup is.
// +kubebuilder:validation:Enum=Pending;Running;Completed;Failed
type BackupPhase string

// The backup phases.
const (
	BackupPending   BackupPhase = "Pending"
	BackupRunning   BackupPhase = "Running"
	BackupCompleted BackupPhase = "Completed"
	BackupFailed    BackupPhase = "Failed"
)

// LabelBackupReason, beside LabelEnvironment (and LabelIncrement on a
// pre-promotion backup), labels every Backup the operator and the kubectl
// plugin create, so that people and tools list them by reason (kubectl get
// backups -l crm.crmops.io/backup-reason=scheduled). Retention does not
// read it: it judges every completed Backup of an environment
// (spec.environmentRef), whoever created it and whatever its reason.
const LabelBackupReason = "crm.crmops.io/backup-reason"

// BackupSpec says what to back up.
type BackupSpec struct {
	// EnvironmentRef names the Environment (in the same namespace) to back up.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="environmentRef is immutable"
	// +required
	EnvironmentRef LocalObjectReference `json:"environmentRef"`
	// Reason is manual, scheduled or pre-promotion. Defaults to manual.
	// +kubebuilder:default=manual
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="reason is immutable"
	// +optional
	Reason BackupReason `json:"reason,omitempty"`
	// Increment this backup precedes, for pre-promotion backups.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Increment string `json:"increment,omitempty"`
}

// BackupStatus is what the operator observed of the backup.
type BackupStatus struct {
	// Phase: Pending, Running, Completed or Failed.
	// +optional
	Phase BackupPhase `json:"phase,omitempty"`
	// Conditions: Ready (Completed and verified by the agent's checksums).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Location of the backup's objects, e.g. s3://bucket/prefix/name.
	// +optional
	Location string `json:"location,omitempty"`
	// SizeBytes stored (compressed).
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// Size stored, for people (e.g. "312.4Mi").
	// +optional
	Size string `json:"size,omitempty"`
	// Checksum of the manifest ("sha256:...").
	// +optional
	Checksum string `json:"checksum,omitempty"`
	// StartedAt is when the backup Job started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// CompletedAt is when the backup completed.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
	// Product and ProductVersion the environment ran.
	// +optional
	Product string `json:"product,omitempty"`
	// +optional
	ProductVersion string `json:"productVersion,omitempty"`
	// Engine of the dumped database.
	// +optional
	Engine DatabaseEngine `json:"engine,omitempty"`
	// Job running the agent.
	// +optional
	JobName string `json:"jobName,omitempty"`
	// Error of a failed backup.
	// +optional
	Error string `json:"error,omitempty"`
	// Origin is the environment the backup was taken of, recorded when the
	// backup starts: restores decide from it (not from spec.environmentRef's
	// name, which a new environment may reuse) whether the backup is an
	// environment's own and whether it holds production data.
	// +optional
	Origin *BackupOrigin `json:"origin,omitempty"`
	// Target is where the backup is stored (the project's spec.backup.target
	// when it started), and ExpiresAt when the project's maximum age
	// (retention.maxAge, capped by gdpr.maxBackupAge) deletes it: both are
	// recorded so that the policy keeps applying after the project is gone
	// (its namespace is then kept while it holds stored backups).
	// +optional
	Target *BackupTarget `json:"target,omitempty"`
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
}

// BackupOrigin identifies the environment a backup was taken of.
type BackupOrigin struct {
	// Environment is the environment's name.
	// +required
	Environment string `json:"environment"`
	// UID of the environment: an environment deleted and created again
	// under the same name has another.
	// +required
	UID types.UID `json:"uid"`
	// Stage of the environment.
	// +required
	Stage Stage `json:"stage"`
}

// Backup is one backup of an environment's database and files, taken by
// crm-agent in a Job and stored in the project's backup target. Deleting a
// Backup deletes its stored data.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=crmbak,categories=crm
// +kubebuilder:printcolumn:name="Environment",type=string,JSONPath=`.spec.environmentRef.name`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.status.size`
// +kubebuilder:printcolumn:name="Stage",type=string,JSONPath=`.status.origin.stage`,priority=1
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.productVersion`,priority=1
// +kubebuilder:printcolumn:name="Location",type=string,JSONPath=`.status.location`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Backup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired backup.
	// +required
	Spec BackupSpec `json:"spec"`
	// Status is what the operator observed.
	// +optional
	Status BackupStatus `json:"status,omitempty"`
}

// BackupList is a list of Backups.
//
// +kubebuilder:object:root=true
type BackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Backup `json:"items"`
}

// RestorePhase is where a restore is.
// +kubebuilder:validation:Enum=Pending;Running;Completed;Failed
type RestorePhase string

// The restore phases.
const (
	RestorePending   RestorePhase = "Pending"
	RestoreRunning   RestorePhase = "Running"
	RestoreCompleted RestorePhase = "Completed"
	RestoreFailed    RestorePhase = "Failed"
)

// RestoreSpec says which backup to restore where.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a Restore cannot be changed: create a new one"
type RestoreSpec struct {
	// BackupRef names the Backup (in the same namespace) to restore.
	// +required
	BackupRef LocalObjectReference `json:"backupRef"`
	// EnvironmentRef names the Environment whose database and files are replaced.
	// +required
	EnvironmentRef LocalObjectReference `json:"environmentRef"`
	// Confirm must equal the environment's name to restore into production:
	// a restore replaces all of its data. Only a project administrator may
	// set it (admission policy crm-production-protection), and production
	// takes only production backups (its own, or another production's for
	// disaster recovery): a test backup's code and data were never accepted.
	// Restores into other stages leave it empty.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Confirm string `json:"confirm,omitempty"`
}

// RestoreStatus is what the operator observed of the restore.
type RestoreStatus struct {
	// Phase: Pending, Running, Completed or Failed.
	// +optional
	Phase RestorePhase `json:"phase,omitempty"`
	// Message explains the phase.
	// +optional
	Message string `json:"message,omitempty"`
	// Conditions: Ready when the restore completed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// JobName of the restore Job.
	// +optional
	JobName string `json:"jobName,omitempty"`
	// PartialData is true when the restore failed after it had begun to
	// replace the environment's data (a load in place, the files): the
	// application stays stopped until a later Restore into the environment
	// completes.
	// +optional
	PartialData bool `json:"partialData,omitempty"`
	// ErasuresReapplied is the number of the project's erasures (GDPR Art. 17)
	// the agent applied again after loading the backup.
	// +optional
	ErasuresReapplied int32 `json:"erasuresReapplied,omitempty"`
	// Anonymized is true when the agent pseudonymized the restored data
	// before the restore completed: a backup of another environment
	// restored into a non-production one under gdpr.anonymizeNonProduction.
	// +optional
	Anonymized bool `json:"anonymized,omitempty"`
	// StartedAt and CompletedAt bound the restore.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
}

// Restore replaces an environment's database and files with a Backup: the
// agent verifies every checksum first; the application is scaled down
// during the restore and back after.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=crmrestore,categories=crm
// +kubebuilder:printcolumn:name="Backup",type=string,JSONPath=`.spec.backupRef.name`
// +kubebuilder:printcolumn:name="Environment",type=string,JSONPath=`.spec.environmentRef.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Restore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired restore.
	// +required
	Spec RestoreSpec `json:"spec"`
	// Status is what the operator observed.
	// +optional
	Status RestoreStatus `json:"status,omitempty"`
}

// RestoreList is a list of Restores.
//
// +kubebuilder:object:root=true
type RestoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Restore `json:"items"`
}

func init() {
	register(&Backup{}, &BackupList{}, &Restore{}, &RestoreList{})
}
