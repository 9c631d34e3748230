package policy

import (
	"fmt"
	"path"
	"sort"
	"strings"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// Namespace annotations through which the project's GDPR policy reaches the
// admission policy crm-gdpr-environment (admission policies read the
// namespace of the object they judge, not other objects). The operator owns
// the project namespace and writes them from spec.gdpr.
const (
	AnnotationEncryptedClasses  = "crm.crmops.io/gdpr-encrypted-storage-classes"
	AnnotationRequireTLS        = "crm.crmops.io/gdpr-require-tls"
	AnnotationAnonymizeNonProd  = "crm.crmops.io/gdpr-anonymize-non-production"
	AnnotationProjectDomain     = "crm.crmops.io/hosting-domain"
	annotationRequireEncryption = "crm.crmops.io/gdpr-require-encrypted-storage"
)

// AnnotationRequireEncryption is the annotation saying encryption at rest is required.
const AnnotationRequireEncryption = annotationRequireEncryption

// NamespaceAnnotations renders the project's GDPR policy for its namespace.
func NamespaceAnnotations(p *crmv1alpha1.ImplementationProject) map[string]string {
	a := map[string]string{
		AnnotationRequireEncryption: "false", AnnotationEncryptedClasses: "",
		AnnotationRequireTLS: "false", AnnotationAnonymizeNonProd: "false",
		AnnotationProjectDomain: p.Spec.Hosting.Domain,
	}
	if g := p.Spec.GDPR; g != nil {
		a[AnnotationRequireEncryption] = fmt.Sprint(g.RequireEncryptedStorage)
		a[AnnotationEncryptedClasses] = strings.Join(g.EncryptedStorageClasses, ",")
		a[AnnotationRequireTLS] = fmt.Sprint(g.RequireTLS)
		a[AnnotationAnonymizeNonProd] = fmt.Sprint(g.AnonymizeNonProduction)
	}
	return a
}

// RegionAllowed reports whether region matches one of the glob patterns; no
// patterns allow every region, and with patterns an unknown (empty) region
// is never allowed: residency is not opt-in.
func RegionAllowed(region string, patterns []string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, region); ok {
			return true
		}
	}
	return false
}

// Violations lists what breaks the project's GDPR policy, for the Compliant
// condition: objects admitted before the policy was tightened.
func Violations(p *crmv1alpha1.ImplementationProject, envs []crmv1alpha1.Environment) []string {
	g := p.Spec.GDPR
	if g == nil {
		return nil
	}
	var out []string
	if !RegionAllowed(p.Spec.Hosting.Region, g.AllowedRegions) {
		out = append(out, fmt.Sprintf("project region %s is outside gdpr.allowedRegions %v", p.Spec.Hosting.Region, g.AllowedRegions))
	}
	if b := p.Spec.Backup; b != nil && b.Target.S3 != nil && !RegionAllowed(b.Target.S3.Region, g.AllowedRegions) {
		out = append(out, fmt.Sprintf("backup target region %s is outside gdpr.allowedRegions", b.Target.S3.Region))
	}
	for _, e := range envs {
		class := e.Spec.Storage.StorageClassName
		if class == "" {
			class = p.Spec.Hosting.StorageClassName
		}
		if g.RequireEncryptedStorage && !contains(g.EncryptedStorageClasses, class) {
			out = append(out, fmt.Sprintf("environment %s: storage class %q is not encrypted", e.Name, class))
		}
		if g.RequireTLS && hasIngress(p, &e) && (e.Spec.Ingress == nil || e.Spec.Ingress.TLSSecretName == "") {
			out = append(out, fmt.Sprintf("environment %s: ingress without TLS", e.Name))
		}
		if g.AnonymizeNonProduction && e.Spec.Stage != crmv1alpha1.StageProduction && e.Spec.Bootstrap != nil && !e.Spec.Bootstrap.Anonymize {
			out = append(out, fmt.Sprintf("environment %s: bootstrapped from a backup without anonymize", e.Name))
		}
	}
	sort.Strings(out)
	return out
}

func hasIngress(p *crmv1alpha1.ImplementationProject, e *crmv1alpha1.Environment) bool {
	return (e.Spec.Ingress != nil && e.Spec.Ingress.Host != "") || p.Spec.Hosting.Domain != ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
