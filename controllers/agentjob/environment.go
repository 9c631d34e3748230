package agentjob

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/controllers/shared"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/resources"
)

// LoadEnvironmentInput gathers what the builders need about an environment.
func (d Deps) LoadEnvironmentInput(ctx context.Context, ns, name string) (*resources.EnvironmentInput, error) {
	c, apiReader := d.Client, d.APIReader
	env := &crmv1alpha1.Environment{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, env); err != nil {
		return nil, fmt.Errorf("environment %s: %w", name, err)
	}
	project := &crmv1alpha1.ImplementationProject{}
	if err := c.Get(ctx, types.NamespacedName{Name: env.Spec.ProjectRef.Name}, project); err != nil {
		return nil, fmt.Errorf("project %s: %w", env.Spec.ProjectRef.Name, err)
	}
	profile, err := crm.For(project.Spec.Product)
	if err != nil {
		return nil, err
	}
	in := &resources.EnvironmentInput{Project: project, Env: env, Profile: profile, Version: resources.DesiredVersion(project, env, profile),
		Tolerations: d.Tolerations, Images: d.Images}
	if env.Status.Version != "" {
		in.Version = env.Status.Version
	}
	if ext := env.Spec.Database.External; ext != nil {
		if in.External, err = shared.ReadExternalDatabase(ctx, apiReader, ns, ext.SecretName, profile.Engine); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// DatabaseRunning reports whether the environment's database serves.
func DatabaseRunning(ctx context.Context, c client.Client, in *resources.EnvironmentInput) (bool, string) {
	if in.External != nil {
		return true, ""
	}
	return kube.WorkloadReady(ctx, c, kube.StatefulSet, in.Env.Namespace, resources.DatabaseName(in.Env.Name), false, nil)
}
