package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErasurePhase is where an erasure request is.
// +kubebuilder:validation:Enum=Pending;Running;Completed;Failed
type ErasurePhase string

// The erasure phases.
const (
	ErasurePending   ErasurePhase = "Pending"
	ErasureRunning   ErasurePhase = "Running"
	ErasureCompleted ErasurePhase = "Completed"
	ErasureFailed    ErasurePhase = "Failed"
)

// ConditionComplete is True on an ErasureRequest once every environment of
// the project has erased the subject.
const ConditionComplete = "Complete"

// ErasureSaltSecretName names the Secret, in the project namespace, holding
// the salt erasures are remembered by (key "salt"). The operator creates it
// once; losing it loses the ability to re-apply erasures after a restore.
const ErasureSaltSecretName = "crm-erasure-salt" //nolint:gosec // G101: the name of a Secret, not a credential

// ErasureSubject identifies the person to erase. The identifiers stay in the
// spec only until every environment has erased the person; then the operator
// removes them and only their salted hash (status.subjectHash) remains.
// +kubebuilder:validation:XValidation:rule="oldSelf.hasValue() || has(self.email)",message="spec.subject.email is required",optionalOldSelf=true
// +kubebuilder:validation:XValidation:rule="!oldSelf.hasValue() || !has(self.email) || (has(oldSelf.value().email) && self.email == oldSelf.value().email)",message="spec.subject.email is immutable: it can only be removed",optionalOldSelf=true
// +kubebuilder:validation:XValidation:rule="!oldSelf.hasValue() || !has(self.externalId) || (has(oldSelf.value().externalId) && self.externalId == oldSelf.value().externalId)",message="spec.subject.externalId is immutable: it can only be removed",optionalOldSelf=true
type ErasureSubject struct {
	// Email address of the person; the products' erasure rules find the
	// person's records by it (case-insensitive).
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:Pattern=`^[^@\s'"\\]+@[^@\s'"\\]+$`
	// +optional
	Email string `json:"email,omitempty"`
	// ExternalID is the person's identifier in the customer's own systems
	// (e.g. the ticket of the request); it is kept hashed like the address.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ExternalID string `json:"externalId,omitempty"`
}

// ErasureRequestSpec asks for one person to be erased from every
// environment of a project (GDPR Art. 17).
type ErasureRequestSpec struct {
	// ProjectRef names the ImplementationProject; the request must be in the
	// project's namespace.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="projectRef is immutable"
	// +required
	ProjectRef ProjectReference `json:"projectRef"`
	// Subject is the person to erase.
	// +required
	Subject ErasureSubject `json:"subject"`
	// Reason, for the record (e.g. "Art. 17 request of 2026-11-20, ticket 4711").
	// Must not contain personal data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="reason is immutable"
	// +required
	Reason string `json:"reason"`
}

// EnvironmentErasure is the state of an erasure in one environment.
type EnvironmentErasure struct {
	// Name of the Environment.
	Name string `json:"name"`
	// Phase: Pending, Running, Completed or Failed.
	Phase ErasurePhase `json:"phase"`
	// JobName of the crm-agent Job that erases the subject there.
	// +optional
	JobName string `json:"jobName,omitempty"`
	// Statements the agent ran (tables the product's rules touched).
	// +optional
	Statements int64 `json:"statements,omitempty"`
	// CompletedAt is when the environment reported completion.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
	// Message says why it waits or failed.
	// +optional
	Message string `json:"message,omitempty"`
}

// ErasureRequestStatus is what the operator observed of the erasure.
type ErasureRequestStatus struct {
	// Phase: Pending, Running, Completed or Failed.
	// +optional
	Phase ErasurePhase `json:"phase,omitempty"`
	// SubjectHash is the salted SHA-256 of the lowercased e-mail address
	// (hex). It is what the operator keeps, and re-applies after every
	// restore of a backup into an environment of the project.
	// +optional
	SubjectHash string `json:"subjectHash,omitempty"`
	// ExternalIDHash is the salted SHA-256 of spec.subject.externalId.
	// +optional
	ExternalIDHash string `json:"externalIdHash,omitempty"`
	// Environments records the erasure in each environment of the project.
	// +listType=map
	// +listMapKey=name
	// +optional
	Environments []EnvironmentErasure `json:"environments,omitempty"`
	// CompletedAt is when every environment had erased the subject.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
	// Conditions: Complete.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ErasureRequest erases one person (GDPR Art. 17 right to erasure) from
// every environment of a project, and keeps a salted hash of the person's
// address so that the erasure is re-applied after any restore of an older
// backup. Create it in the project's namespace; wait with
// `kubectl wait --for=condition=Complete erasurerequest/NAME`.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=crmerase,categories=crm
// +kubebuilder:printcolumn:name="Project",type=string,JSONPath=`.spec.projectRef.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Completed",type=date,JSONPath=`.status.completedAt`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ErasureRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the requested erasure.
	// +required
	Spec ErasureRequestSpec `json:"spec"`
	// Status is what the operator observed.
	// +optional
	Status ErasureRequestStatus `json:"status,omitempty"`
}

// ErasureRequestList is a list of ErasureRequests.
//
// +kubebuilder:object:root=true
type ErasureRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ErasureRequest `json:"items"`
}

func init() {
	register(&ErasureRequest{}, &ErasureRequestList{})
}
