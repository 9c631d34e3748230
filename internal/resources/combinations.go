package resources

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
)

// Products, stages and hosting modes: every combination is tested, and sent
// through a real API server's validation by test/api.
var (
	Products = []crmv1alpha1.Product{
		{Name: crmv1alpha1.ProductSuiteCRM},
		{Name: crmv1alpha1.ProductEspoCRM},
		{Name: crmv1alpha1.ProductOdoo},
		{Name: crmv1alpha1.ProductTwenty},
		{Name: crmv1alpha1.ProductCustom, Image: "registry.example.com/acme/crm", Version: "2.0.1", Port: 3000,
			DatabaseEngine: crmv1alpha1.DatabasePostgreSQL, HealthPath: "/healthz",
			Env: []corev1.EnvVar{{Name: "APP_MODE", Value: "production"}}},
	}
	Stages  = []crmv1alpha1.Stage{crmv1alpha1.StageTest, crmv1alpha1.StageStaging, crmv1alpha1.StageProduction, crmv1alpha1.StageTraining}
	Hosting = []crmv1alpha1.Hosting{
		{Mode: crmv1alpha1.HostingCloud, Region: "eu-central-1", Domain: "crm.example.net", IngressClassName: "nginx", StorageClassName: "encrypted-ssd"},
		{Mode: crmv1alpha1.HostingOnPrem},
	}
)

// Combination is one product x stage x hosting input.
type Combination struct {
	Name  string
	Input *EnvironmentInput
}

// Combinations builds the input of every product x stage x hosting mode in namespace.
func Combinations(namespace string) []Combination {
	var cases []Combination
	for _, p := range Products {
		for _, s := range Stages {
			for _, h := range Hosting {
				project := &crmv1alpha1.ImplementationProject{
					ObjectMeta: metav1.ObjectMeta{Name: namespace, UID: "project-uid"},
					Spec: crmv1alpha1.ImplementationProjectSpec{
						Customer: crmv1alpha1.Customer{Name: "ACME"}, Product: p, Hosting: h,
						ProductOwners: crmv1alpha1.Subjects{Users: []string{"po"}},
					},
				}
				env := &crmv1alpha1.Environment{
					ObjectMeta: metav1.ObjectMeta{Name: string(s), Namespace: namespace, UID: "env-uid"},
					Spec:       crmv1alpha1.EnvironmentSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: namespace}, Stage: s},
				}
				if h.Mode == crmv1alpha1.HostingCloud {
					project.Spec.Mail = &crmv1alpha1.MailPolicy{SMTP: &crmv1alpha1.SMTPServer{ //nolint:gosec // G101: a Secret's name
						Host: "smtp.acme.example", Port: 587, From: "crm@acme.example", TLS: ptrTo(true), CredentialsSecretName: "acme-smtp",
					}}
				}
				if s == crmv1alpha1.StageProduction {
					env.Spec.Replicas = ptrTo(int32(2))
					env.Spec.Ingress = &crmv1alpha1.EnvironmentIngress{Host: "crm.acme.example", TLSSecretName: "acme-tls"}
				}
				prof, err := crm.For(p)
				if err != nil {
					panic(err) // the products above are all valid
				}
				cases = append(cases, Combination{
					Name: string(p.Name) + "/" + string(s) + "/" + string(h.Mode),
					Input: &EnvironmentInput{Project: project, Env: env, Profile: prof,
						Version: DesiredVersion(project, env, prof), IngressNamespace: "ingress-nginx"},
				})
			}
		}
	}
	return cases
}

func ptrTo[T any](v T) *T { return &v }
