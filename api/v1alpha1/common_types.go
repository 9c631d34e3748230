package v1alpha1

// Condition types shared by several kinds. Each kind documents the ones it sets.
const (
	// ConditionReady is True when the object has reached the state its spec asks for.
	ConditionReady = "Ready"
)

// Labels and annotations the operator sets on what it owns.
const (
	// LabelProject names the ImplementationProject an object belongs to.
	LabelProject = "crm.crmops.io/project"
	// LabelEnvironment names the Environment an object belongs to.
	LabelEnvironment = "crm.crmops.io/environment"
	// LabelManagedBy marks objects created by the operator, so its caches can
	// select only them.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy on the operator's objects.
	ManagedByValue = "crm-operator"
)

// LocalObjectReference names an object in the same scope as the referrer.
type LocalObjectReference struct {
	// Name of the referenced object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`
}

// ProjectReference names the ImplementationProject an object belongs to.
type ProjectReference struct {
	// Name of the ImplementationProject. Its namespace has the same name, and the
	// referring object must live in it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`
}

// CronSchedule is a standard five-field cron expression ("30 2 * * *") or one of
// the descriptors @yearly, @monthly, @weekly, @daily, @hourly. Times are UTC.
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:Pattern=`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|([0-9A-Za-z*?,/-]+ +){4}[0-9A-Za-z*?,/-]+)$`
type CronSchedule string

// Duration is a number of days ("30d", as retention periods are set) or a
// Go-style duration: whole numbers with units h, m, s or ms ("720h",
// "90m", "1h30m"). A day is 24 hours.
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:XValidation:rule="self.matches('^(([0-9]+(h|m|s|ms))+|[0-9]{1,5}d)$')",message="must be a number of days such as 30d, or hours, minutes and seconds such as 720h, 90m or 1h30m"
type Duration string

// Subjects lists the people allowed a role, by the user names and groups that the
// cluster's authentication reports for them.
// +kubebuilder:validation:XValidation:rule="size(self.?users.orValue([])) + size(self.?groups.orValue([])) > 0",message="name at least one user or group"
type Subjects struct {
	// Users by user name as authenticated by the cluster (e.g. "alice@customer.example").
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	Users []string `json:"users,omitempty"`
	// Groups as authenticated by the cluster (e.g. "customer:product-owners").
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// Built-in groups (system:authenticated, system:masters, ...) would hand a
	// project's rights to everyone or to no one in particular.
	// +kubebuilder:validation:XValidation:rule="self.all(g, !g.startsWith('system:'))",message="groups must not be built-in system: groups"
	Groups []string `json:"groups,omitempty"`
}

// SMTPServer is a real mail server an environment sends e-mail through.
type SMTPServer struct {
	// Host of the SMTP server.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$`
	// +required
	Host string `json:"host"`
	// Port of the SMTP server. Defaults to 587 (submission).
	// +kubebuilder:default=587
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
	// From is the sender address of the CRM's mail.
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:Pattern=`^[^@\s]+@[^@\s]+$`
	// +required
	From string `json:"from"`
	// TLS uses STARTTLS/TLS. Defaults to true.
	// +kubebuilder:default=true
	// +optional
	TLS *bool `json:"tls,omitempty"`
	// CredentialsSecretName names a Secret in the project's namespace with
	// the keys username and password; absent, the server takes no login.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	CredentialsSecretName string `json:"credentialsSecretName,omitempty"`
}
