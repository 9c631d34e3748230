// Package resources builds the objects the operator owns from the API objects
// (CloudNativePG's pkg/specs style): pure functions of their inputs, no client,
// so that every product x stage x hosting mode is tested table-driven.
package resources

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	gdpr "github.com/crmops/crm-operator/internal/policy"
)

// Names of the project-level objects in the project namespace.
const (
	ProjectQuotaName      = "crm-quota"
	ProjectLimitRangeName = "crm-limits"
	DefaultDenyPolicyName = "crm-default-deny"
	ProductOwnerRoleName  = "crm-product-owner"
	IntegratorRoleName    = "crm-integrator"
	AdministratorRoleName = "crm-project-admin"
)

// ProjectLabels are the labels of every object the operator creates for a project.
func ProjectLabels(project string) map[string]string {
	return map[string]string{
		crmv1alpha1.LabelManagedBy: crmv1alpha1.ManagedByValue,
		crmv1alpha1.LabelProject:   project,
	}
}

func meta(name, namespace string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels}
}

// ProjectObjects are the project's namespace and the objects in it shared by
// its environments: quota, limits, default-deny network policy, roles.
// Absent lists objects that must not exist for this spec (quota removed).
func ProjectObjects(p *crmv1alpha1.ImplementationProject) (desired, absent []client.Object) {
	ns := p.Name
	labels := ProjectLabels(p.Name)
	nsLabels := ProjectLabels(p.Name)
	// Every pod in the namespace must pass the restricted profile.
	nsLabels["pod-security.kubernetes.io/enforce"] = "restricted"
	nsLabels["pod-security.kubernetes.io/enforce-version"] = "latest"
	nsLabels["pod-security.kubernetes.io/warn"] = "restricted"

	desired = append(desired,
		&corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: metav1.ObjectMeta{
			Name: ns, Labels: nsLabels, Annotations: gdpr.NamespaceAnnotations(p),
		}},
		&corev1.LimitRange{
			TypeMeta:   typeMeta("v1", "LimitRange"),
			ObjectMeta: meta(ProjectLimitRangeName, ns, labels),
			Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
				// Defaults for pods that name no resources, so the quota admits them.
				Type:           corev1.LimitTypeContainer,
				DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Default:        corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			}}},
		},
		&networkingv1.NetworkPolicy{
			TypeMeta:   typeMeta("networking.k8s.io/v1", "NetworkPolicy"),
			ObjectMeta: meta(DefaultDenyPolicyName, ns, labels),
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			},
		},
	)
	desired = append(desired, projectRBAC(p, labels)...)

	quota := &corev1.ResourceQuota{TypeMeta: typeMeta("v1", "ResourceQuota"), ObjectMeta: meta(ProjectQuotaName, ns, labels)}
	if hard := quotaHard(p.Spec.Quota); len(hard) > 0 {
		quota.Spec.Hard = hard
		desired = append(desired, quota)
	} else {
		absent = append(absent, quota)
	}
	return desired, absent
}

func quotaHard(q *crmv1alpha1.ProjectQuota) corev1.ResourceList {
	hard := corev1.ResourceList{}
	if q == nil {
		return hard
	}
	if q.CPU != nil {
		hard[corev1.ResourceRequestsCPU] = *q.CPU
	}
	if q.Memory != nil {
		hard[corev1.ResourceRequestsMemory] = *q.Memory
	}
	if q.Storage != nil {
		hard[corev1.ResourceRequestsStorage] = *q.Storage
	}
	return hard
}

var (
	crmKinds   = []string{"implementationprojects", "environments", "increments", "backups", "restores", "erasurerequests"}
	readCore   = []string{"pods", "pods/log", "services", "persistentvolumeclaims", "configmaps", "events", "endpoints"}
	readVerbs  = []string{"get", "list", "watch"}
	writeVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete"}
)

// readRules let a project member see the namespace's workloads and CRM objects.
// Secrets are left out on purpose: they hold the database and admin passwords.
func readRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{crmv1alpha1.GroupVersion.Group}, Resources: crmKinds, Verbs: readVerbs},
		{APIGroups: []string{""}, Resources: readCore, Verbs: readVerbs},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "replicasets"}, Verbs: readVerbs},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: readVerbs},
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses", "networkpolicies"}, Verbs: readVerbs},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: readVerbs},
	}
}

// erasureRule lets both roles file erasure requests (the customer's product
// owner usually receives them). Not delete: a deleted request is forgotten,
// and a later restore would bring the person back.
var erasureRule = rbacv1.PolicyRule{
	APIGroups: []string{crmv1alpha1.GroupVersion.Group}, Resources: []string{"erasurerequests"}, Verbs: []string{"create"},
}

func projectRBAC(p *crmv1alpha1.ImplementationProject, labels map[string]string) []client.Object {
	ns := p.Name
	// Product owners read everything but Secrets and may update Increments to
	// accept or reject them; the admission webhook limits which fields they change.
	poRules := append(readRules(), rbacv1.PolicyRule{
		APIGroups: []string{crmv1alpha1.GroupVersion.Group}, Resources: []string{"increments"}, Verbs: []string{"update", "patch"},
	}, rbacv1.PolicyRule{
		// A virtual subresource: the admission policy crm-increment-acceptance
		// asks the authorizer for it before anyone changes spec.acceptance.
		APIGroups: []string{crmv1alpha1.GroupVersion.Group}, Resources: []string{"increments/acceptance"}, Verbs: []string{"update"},
	}, erasureRule)
	// Integrators manage Environments, Increments, Backups and Restores; the
	// admission policies in crm-production-protection keep production's
	// creation, deletion, protected fields, restores and backups from them.
	intRules := append(readRules(), rbacv1.PolicyRule{
		APIGroups: []string{crmv1alpha1.GroupVersion.Group}, Resources: []string{"environments", "increments", "backups", "restores"}, Verbs: writeVerbs,
	}, contentRule, erasureRule)
	// Administrators hold the integrators' rights and the virtual
	// subresources those policies ask for.
	adminRules := append(append([]rbacv1.PolicyRule{}, intRules...), AdministratorRules()...)
	objs := []client.Object{
		&rbacv1.Role{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta(ProductOwnerRoleName, ns, labels), Rules: poRules},
		&rbacv1.Role{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta(IntegratorRoleName, ns, labels), Rules: intRules},
		&rbacv1.Role{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta(AdministratorRoleName, ns, labels), Rules: adminRules},
	}
	for _, role := range ProjectRoles(p) {
		objs = append(objs, roleBinding(role.Name, ns, labels, role.Subjects))
	}
	return objs
}

// ProjectRole is a role a project names people for.
type ProjectRole struct {
	// Name of the Role and RoleBinding in the project's namespace.
	Name     string
	Subjects *crmv1alpha1.Subjects
}

// ProjectRoles are the project's roles and who holds them: the one
// definition of who may see a project. Each is bound in its namespace with
// read access, and each holder sees the project in the portal.
func ProjectRoles(p *crmv1alpha1.ImplementationProject) []ProjectRole {
	return []ProjectRole{
		{ProductOwnerRoleName, &p.Spec.ProductOwners},
		{IntegratorRoleName, p.Spec.Integrators},
		{AdministratorRoleName, p.Spec.Administrators},
	}
}

// Holds says whether the user, or one of the groups, is among s (nil: nobody).
func Holds(s *crmv1alpha1.Subjects, user string, groups []string) bool {
	if s == nil || user == "" {
		return false
	}
	if slices.Contains(s.Users, user) {
		return true
	}
	for _, g := range groups {
		if slices.Contains(s.Groups, g) {
			return true
		}
	}
	return false
}

// contentRule: the virtual subresource admission policy crm-increment-content
// asks for before an increment's content changes (integrators, not product owners).
var contentRule = rbacv1.PolicyRule{
	APIGroups: []string{crmv1alpha1.GroupVersion.Group}, Resources: []string{"increments/content"}, Verbs: []string{"update"},
}

// AdministratorRules are the virtual subresources the production-protection
// admission policies ask the authorizer for (config/admission/production_protection.yaml).
func AdministratorRules() []rbacv1.PolicyRule {
	group := []string{crmv1alpha1.GroupVersion.Group}
	return []rbacv1.PolicyRule{
		{APIGroups: group, Resources: []string{"environments/production"}, Verbs: []string{"create", "update", "delete"}},
		{APIGroups: group, Resources: []string{"backups/production", "increments/accepted"}, Verbs: []string{"delete"}},
		{APIGroups: group, Resources: []string{"restores/production"}, Verbs: []string{"create"}},
	}
}

func roleBinding(role, ns string, labels map[string]string, who *crmv1alpha1.Subjects) *rbacv1.RoleBinding {
	rb := &rbacv1.RoleBinding{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"),
		ObjectMeta: meta(role, ns, labels),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role},
		Subjects:   []rbacv1.Subject{},
	}
	if who == nil {
		return rb
	}
	for _, u := range who.Users {
		rb.Subjects = append(rb.Subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: u})
	}
	for _, g := range who.Groups {
		rb.Subjects = append(rb.Subjects, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: g})
	}
	return rb
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}
