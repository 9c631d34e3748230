package v1alpha1

// Finalizers the operator sets, and the labels it leaves on data kept after
// its objects were deleted: what a user sees on the objects, and what the
// deletion policies promise.

// BackupFinalizer deletes a Backup's stored data before the Backup goes.
const BackupFinalizer = "crm.crmops.io/backup-data"

// EnvironmentFinalizer lets the operator apply the deletion policy to an
// environment's data before the environment goes.
const EnvironmentFinalizer = "crm.crmops.io/environment-data"

// LabelRetainedFrom marks volumes and credentials kept after their
// environment was deleted with deletionPolicy Retain.
const LabelRetainedFrom = "crm.crmops.io/retained-from"

// LabelRetainedStage marks retained volumes and credentials with the stage
// of the environment they came from: only an environment of that stage (and
// of the same project: they stay in its namespace) adopts them. Retained
// data without it (kept by an older operator) counts as production's.
const LabelRetainedStage = "crm.crmops.io/retained-stage"

// ProjectFinalizer holds a project (and so its namespace) while environments
// whose data must be retained still exist in it.
const ProjectFinalizer = "crm.crmops.io/project-data"

// LabelRetainedData marks a namespace a deleted project left behind
// because it holds retained claims and credentials.
const LabelRetainedData = "crm.crmops.io/retained-data"

// LabelRetainedProject marks, on a retained claim's PersistentVolume, the
// project (namespace) it came from; AnnotationRetainedClaim names the claim.
const (
	LabelRetainedProject    = "crm.crmops.io/retained-project"
	AnnotationRetainedClaim = "crm.crmops.io/retained-claim"
)

// LabelAdopt on an existing namespace lets the ImplementationProject of the
// label's value take it over; without it a project refuses a namespace of
// its name that another owner made.
const LabelAdopt = "crm.crmops.io/adopt"
