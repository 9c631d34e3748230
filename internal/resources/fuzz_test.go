package resources

import (
	"regexp"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// The API's own patterns (api/v1alpha1): the fuzzer explores what admission
// lets through, since the builders never see anything else.
var (
	versionPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	hostPattern    = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// FuzzEnvironmentObjects: for any admitted environment the builders return
// valid, labelled, restricted objects, each once, and never panic.
func FuzzEnvironmentObjects(f *testing.F) {
	f.Add(uint8(0), "test", "18.0", uint8(1), "crm.example.com", false, false)
	f.Add(uint8(7), "production", "10.0.3", uint8(3), "", true, false)
	f.Add(uint8(33), "a", "1", uint8(0), "x.y", false, true)
	f.Add(uint8(12), "training-with-a-rather-long-environment-name", "2024.10.1-rc.1", uint8(50), "", false, false)
	combos := Combinations("acme")
	f.Fuzz(func(t *testing.T, pick uint8, name, version string, replicas uint8, host string, hibernate, stopped bool) {
		if len(validation.IsDNS1123Label(name)) > 0 || len(name) > 50 || !versionPattern.MatchString(version) || len(version) > 128 ||
			replicas > 50 || (host != "" && (!hostPattern.MatchString(host) || len(host) > 253)) {
			return // refused at admission
		}
		tc := combos[int(pick)%len(combos)]
		in := *tc.Input
		env := in.Env.DeepCopy()
		env.Name, env.Spec.Hibernate = name, hibernate
		r := int32(replicas)
		env.Spec.Replicas = &r
		if host != "" {
			env.Spec.Ingress = &crmv1alpha1.EnvironmentIngress{Host: host}
		}
		in.Env, in.Version, in.ApplicationStopped = env, version, stopped

		desired, absent := EnvironmentObjects(&in)
		seen := map[string]bool{}
		for _, o := range append(desired, absent...) {
			id := o.GetObjectKind().GroupVersionKind().Kind + "/" + o.GetName()
			if seen[id] {
				t.Fatalf("%s is built twice", id)
			}
			seen[id] = true
			if errs := validation.IsDNS1123Subdomain(o.GetName()); len(errs) > 0 {
				t.Fatalf("%s: invalid name: %v", id, errs)
			}
			if o.GetNamespace() != env.Namespace {
				t.Fatalf("%s in namespace %q, want %q", id, o.GetNamespace(), env.Namespace)
			}
			for k, v := range o.GetLabels() {
				if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
					t.Fatalf("%s: label %s=%q: %v", id, k, v, errs)
				}
			}
		}
		for _, o := range desired {
			if spec := podSpec(o); spec != nil {
				checkRestricted(t, o.GetName(), spec)
			}
		}
	})
}
