package api_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// TestManagerRBACIsLeastPrivilege: the ClusterRole generated from the
// +kubebuilder:rbac markers names every group, resource and verb; the
// controllers' envtest suite runs the manager with exactly this role.
func TestManagerRBACIsLeastPrivilege(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, role); err != nil {
		t.Fatal(err)
	}
	if len(role.Rules) == 0 {
		t.Fatal("no rules generated")
	}
	for _, r := range role.Rules {
		for _, field := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames} {
			for _, v := range field {
				if v == "*" {
					t.Errorf("wildcard in rule %+v", r)
				}
			}
		}
		for _, v := range r.Verbs {
			if v == "escalate" || v == "bind" || v == "impersonate" {
				t.Errorf("rule %+v grants %s", r, v)
			}
		}
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %+v grants non-resource URLs", r)
		}
	}
}

// The operator writes one webhook configuration, its own (the CA bundle): no
// cluster-wide update or patch on webhook configurations, which would let it
// (or whoever takes its token) switch off any admission webhook of the cluster.
func TestManagerWritesOnlyItsOwnWebhookConfiguration(t *testing.T) {
	read := func(path string) []rbacv1.PolicyRule {
		data, err := os.ReadFile(filepath.Join("..", "..", path))
		if err != nil {
			t.Fatal(err)
		}
		role := &rbacv1.ClusterRole{}
		if err := yaml.Unmarshal([]byte(strings.Split(string(data), "\n---\n")[0]), role); err != nil {
			t.Fatal(err)
		}
		return role.Rules
	}
	writes := func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, "admissionregistration.k8s.io") &&
			(slices.Contains(r.Verbs, "update") || slices.Contains(r.Verbs, "patch") || slices.Contains(r.Verbs, "delete"))
	}
	for _, r := range read("config/rbac/role.yaml") {
		if writes(r) {
			t.Errorf("the manager's ClusterRole writes admission configurations cluster-wide: %+v", r)
		}
	}
	ca := read("config/webhook/ca_injection_role.yaml")
	if len(ca) != 1 || !writes(ca[0]) || !slices.Equal(ca[0].ResourceNames, []string{"crm-operator-references"}) {
		t.Errorf("the CA injection role must name exactly the operator's webhook configuration: %+v", ca)
	}
}
