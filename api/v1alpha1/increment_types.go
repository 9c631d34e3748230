package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of an Increment, in the order the flow sets them.
const (
	// ConditionDeployed is True when the increment is rolled out to its current stage.
	ConditionDeployed = "Deployed"
	// ConditionVerified is True when the rollout on the current stage passed its checks.
	ConditionVerified = "Verified"
	// ConditionAccepted is True when a product owner accepted the increment.
	ConditionAccepted = "Accepted"
	// ConditionBackedUp is True when the pre-promotion backup of the target completed.
	ConditionBackedUp = "BackedUp"
	// ConditionPromoted is True when the increment runs on the last stage (production).
	ConditionPromoted = "Promoted"
	// ConditionRolledBack is True when a failed rollout was rolled back.
	ConditionRolledBack = "RolledBack"
	// ConditionFailed is True when the increment cannot go further.
	ConditionFailed = "Failed"
	// ConditionSuperseded is True when a newer accepted increment replaced this one.
	ConditionSuperseded = "Superseded"
	// ConditionWaiting is True while a promotion waits (maintenance window, another promotion).
	ConditionWaiting = "Waiting"
)

// Annotations the admission policies and the operator use.
const (
	// AnnotationAcceptedBy is set by the API server's mutating admission
	// policy to the user name that set spec.acceptance; clients cannot forge it.
	AnnotationAcceptedBy = "crm.crmops.io/accepted-by"
	// AnnotationAcceptedByGroups is stamped beside it: the groups of that
	// user, one per line, with which the operator asks the authorizer
	// itself whether the user may accept (SubjectAccessReview).
	AnnotationAcceptedByGroups = "crm.crmops.io/accepted-by-groups"
	// AnnotationIncrement on an Environment names the Increment it runs.
	AnnotationIncrement = "crm.crmops.io/increment"
	// AnnotationSchemaVersion on an Environment is the version a promotion's
	// migration Job brought the database to (the product's upgrade ran, or
	// none was needed): the environment does not upgrade it again.
	AnnotationSchemaVersion = "crm.crmops.io/schema-version"
	// AnnotationBuild on a migration Job is the fingerprint of the build
	// (Build.Fingerprint) it migrates to.
	AnnotationBuild = "crm.crmops.io/build"
	// LabelIncrement names the Increment that started a migration Job or a
	// rollback Restore; both are owned by the Environment, so that deleting
	// the Increment never stops work on data.
	LabelIncrement = "crm.crmops.io/increment"
	// IncrementFinalizer holds an Increment's deletion while a migration,
	// rollout, verification or rollback restore of it is in flight: the
	// promotion finishes or is undone first.
	IncrementFinalizer = "crm.crmops.io/increment-work"
)

// AcceptanceDecision is a product owner's verdict on an increment.
// +kubebuilder:validation:Enum=Accepted;Rejected
type AcceptanceDecision string

// The acceptance decisions.
const (
	DecisionAccepted AcceptanceDecision = "Accepted"
	DecisionRejected AcceptanceDecision = "Rejected"
)

// IncrementPhase summarises where an increment is.
// +kubebuilder:validation:Enum=Pending;Deploying;Verifying;AwaitingAcceptance;AwaitingPromotion;Promoting;Promoted;Rejected;RolledBack;Failed;Superseded
type IncrementPhase string

// The increment phases.
const (
	IncrementPending            IncrementPhase = "Pending"
	IncrementDeploying          IncrementPhase = "Deploying"
	IncrementVerifying          IncrementPhase = "Verifying"
	IncrementAwaitingAcceptance IncrementPhase = "AwaitingAcceptance"
	IncrementAwaitingPromotion  IncrementPhase = "AwaitingPromotion"
	IncrementSuperseded         IncrementPhase = "Superseded"
	IncrementPromoting          IncrementPhase = "Promoting"
	IncrementPromoted           IncrementPhase = "Promoted"
	IncrementRejected           IncrementPhase = "Rejected"
	IncrementRolledBack         IncrementPhase = "RolledBack"
	IncrementFailed             IncrementPhase = "Failed"
)

// StagePhase is where an increment is on one stage.
// +kubebuilder:validation:Enum=Pending;Waiting;BackingUp;Migrating;RollingOut;Verifying;Restoring;Succeeded;Failed;RolledBack
type StagePhase string

// The stage phases.
const (
	StagePending    StagePhase = "Pending"
	StageWaiting    StagePhase = "Waiting"
	StageBackingUp  StagePhase = "BackingUp"
	StageMigrating  StagePhase = "Migrating"
	StageRollingOut StagePhase = "RollingOut"
	StageVerifying  StagePhase = "Verifying"
	// StageRestoring: a failed promotion waits for the Restore of the
	// pre-promotion backup; RolledBack follows only once it completed.
	StageRestoring  StagePhase = "Restoring"
	StageSucceeded  StagePhase = "Succeeded"
	StageFailed     StagePhase = "Failed"
	StageRolledBack StagePhase = "RolledBack"
)

// Change is one backlog item delivered by the increment.
type Change struct {
	// ID of the backlog item (e.g. "CRM-142").
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9_.#-]*$`
	// +required
	ID string `json:"id"`
	// Title of the backlog item.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +required
	Title string `json:"title"`
	// Block of the backlog the item belongs to (epic, module or work package).
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Block string `json:"block,omitempty"`
	// Hours spent on the item; counted into the project's deliveredHours on promotion.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	// +optional
	Hours int32 `json:"hours,omitempty"`
}

// Migration is a data migration the increment needs, run as a Job with the
// increment's image before the application rolls out on each stage.
type Migration struct {
	// Command run in the application image, e.g. ["php", "command.php", "rebuild"].
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=1024
	// +listType=atomic
	// +required
	Command []string `json:"command"`
	// Timeout of the migration Job. Defaults to 30m.
	// +optional
	Timeout Duration `json:"timeout,omitempty"`
}

// Acceptance is a product owner's verdict on the increment after testing it.
// +kubebuilder:validation:XValidation:rule="self.decision != 'Rejected' || (has(self.comment) && size(self.comment) > 0)",message="comment is required when the decision is Rejected",fieldPath=".comment"
type Acceptance struct {
	// Decision: Accepted or Rejected.
	// +required
	Decision AcceptanceDecision `json:"decision"`
	// Comment of the product owner; required when rejecting.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Comment string `json:"comment,omitempty"`
}

// IncrementSpec is one sprint's deliverable.
// +kubebuilder:validation:XValidation:rule="has(self.version) != has(self.image)",message="set exactly one of version or image"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.acceptance) || oldSelf.acceptance.decision != 'Accepted' || (has(self.version) == has(oldSelf.version) && (!has(self.version) || self.version == oldSelf.version) && has(self.image) == has(oldSelf.image) && (!has(self.image) || self.image == oldSelf.image) && has(self.migration) == has(oldSelf.migration) && (!has(self.migration) || self.migration == oldSelf.migration) && has(self.changes) == has(oldSelf.changes) && (!has(self.changes) || self.changes == oldSelf.changes) && self.sprint == oldSelf.sprint)",message="version, image, migration, changes and sprint are immutable once the increment is accepted: the product owner accepted exactly these"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.acceptance) || oldSelf.acceptance.decision != 'Accepted' || (has(self.acceptance) && self.acceptance.decision == 'Accepted')",message="an accepted increment cannot be un-accepted: create a new increment",fieldPath=".acceptance"
type IncrementSpec struct {
	// ProjectRef names the ImplementationProject; the increment must be in the
	// project's namespace.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="projectRef is immutable"
	// +required
	ProjectRef ProjectReference `json:"projectRef"`
	// Sprint number, from 1.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +required
	Sprint int32 `json:"sprint"`
	// Version of the product (an image tag of the project's image). Exactly one of
	// version or image.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`
	// +optional
	Version string `json:"version,omitempty"`
	// Image is a full image reference, digest allowed
	// (e.g. "registry.example.com/crm/app@sha256:..."). Exactly one of version or image.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+([._/:@-][A-Za-z0-9_]+)*$`
	// +optional
	Image string `json:"image,omitempty"`
	// Changes are the backlog items the increment delivers.
	// +listType=map
	// +listMapKey=id
	// +kubebuilder:validation:MaxItems=500
	// +optional
	Changes []Change `json:"changes,omitempty"`
	// Migration runs before the rollout on every stage, rehearsed on test first.
	// +optional
	Migration *Migration `json:"migration,omitempty"`
	// Acceptance is set by a product owner of the project after testing; the
	// API refuses it from anyone else.
	// +optional
	Acceptance *Acceptance `json:"acceptance,omitempty"`
	// Promote asks to move the accepted increment to the next stage.
	// +optional
	Promote bool `json:"promote,omitempty"`
	// AutoPromote moves the increment on as soon as it is accepted.
	// +optional
	AutoPromote bool `json:"autoPromote,omitempty"`
	// VerifyTimeout bounds the health check after a rollout; past it the
	// rollout counts as failed and production is rolled back. Defaults to 10m.
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(([0-9]+(h|m|s|ms))+|[0-9]{1,5}d)$') || (self.endsWith('d') ? int(self.substring(0, self.size() - 1)) * 86400 : duration(self).getSeconds()) >= 10",message="verifyTimeout must be at least 10s"
	// +optional
	VerifyTimeout Duration `json:"verifyTimeout,omitempty"`
}

// StageStatus is the increment's progress on one stage.
type StageStatus struct {
	// Name of the stage (the Environment name).
	Name string `json:"name"`
	// Phase on this stage.
	// +optional
	Phase StagePhase `json:"phase,omitempty"`
	// Version rolled out on this stage.
	// +optional
	Version string `json:"version,omitempty"`
	// StartedAt is when work on this stage started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// FinishedAt is when work on this stage ended.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// Message explains the phase.
	// +optional
	Message string `json:"message,omitempty"`
	// PreviousVersion is what the stage ran before, for a rollback: recorded
	// when a stage with a pre-promotion backup starts, else just before the
	// rollout.
	// +optional
	PreviousVersion string `json:"previousVersion,omitempty"`
	// PreviousImage is the image override the stage ran before, if any.
	// +optional
	PreviousImage string `json:"previousImage,omitempty"`
	// PreviousIncrement is the increment the stage ran before.
	// +optional
	PreviousIncrement string `json:"previousIncrement,omitempty"`
	// Backup is the pre-promotion Backup of this stage.
	// +optional
	Backup string `json:"backup,omitempty"`
	// MigrationJob ran the increment's migration on this stage.
	// +optional
	MigrationJob string `json:"migrationJob,omitempty"`
	// RolloutStartedAt is when the new version was applied, for the verification deadline.
	// +optional
	RolloutStartedAt *metav1.Time `json:"rolloutStartedAt,omitempty"`
	// Image is the image override rolled out on this stage, if any.
	// +optional
	Image string `json:"image,omitempty"`
	// Build is the fingerprint of the build rolled out and verified on this
	// stage (status.build.fingerprint at the time).
	// +optional
	Build string `json:"build,omitempty"`
	// Restore is the Restore of the pre-promotion backup after a failed
	// promotion (restoreDatabaseOnRollback).
	// +optional
	Restore string `json:"restore,omitempty"`
}

// Build identifies what an increment rolls out. A change of it after work
// on the first stage began restarts the increment there: the build promoted
// is always the build verified and accepted.
type Build struct {
	// Version rolled out (spec.version, or derived from spec.image).
	// +optional
	Version string `json:"version,omitempty"`
	// Image override, if any (spec.image).
	// +optional
	Image string `json:"image,omitempty"`
	// Fingerprint is sha256 over version, image and migration command.
	// +optional
	Fingerprint string `json:"fingerprint,omitempty"`
}

// IncrementStatus is what the operator observed of the increment.
type IncrementStatus struct {
	// Phase summarises where the increment is.
	// +optional
	Phase IncrementPhase `json:"phase,omitempty"`
	// Conditions: Deployed, Verified, Accepted, BackedUp, Promoted, RolledBack, Failed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// CurrentStage is the stage the increment is on or moving to.
	// +optional
	CurrentStage string `json:"currentStage,omitempty"`
	// Build is what the stages roll out; each stage records the fingerprint
	// it verified (stages[].build).
	// +optional
	Build *Build `json:"build,omitempty"`
	// Restarts counts the restarts on the first stage after spec.version,
	// spec.image or spec.migration changed.
	// +optional
	Restarts int32 `json:"restarts,omitempty"`
	// Stages is the increment's progress on each stage.
	// +listType=map
	// +listMapKey=name
	// +optional
	Stages []StageStatus `json:"stages,omitempty"`
	// AcceptedBy is the user name that set the acceptance, recorded by the API
	// from the request's identity.
	// +optional
	AcceptedBy string `json:"acceptedBy,omitempty"`
	// AcceptedAt is when the acceptance was set.
	// +optional
	AcceptedAt *metav1.Time `json:"acceptedAt,omitempty"`
}

// Increment is one sprint's deliverable: a product version or image, the backlog
// items it delivers and an optional migration. It rolls out to the first stage,
// waits for a product owner's acceptance, and is then promoted stage by stage to
// production: backup first, rollout, health check, rollback on failure.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=inc,categories=crm
// +kubebuilder:printcolumn:name="Project",type=string,JSONPath=`.spec.projectRef.name`,priority=1
// +kubebuilder:printcolumn:name="Sprint",type=integer,JSONPath=`.spec.sprint`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Stage",type=string,JSONPath=`.status.currentStage`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Accepted-By",type=string,JSONPath=`.status.acceptedBy`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Increment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired increment.
	// +required
	Spec IncrementSpec `json:"spec"`
	// Status is what the operator observed.
	// +optional
	Status IncrementStatus `json:"status,omitempty"`
}

// IncrementList is a list of Increments.
//
// +kubebuilder:object:root=true
type IncrementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Increment `json:"items"`
}

func init() {
	register(&Increment{}, &IncrementList{})
}
