package agentjob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
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
		if in.External, err = ReadExternalDatabase(ctx, apiReader, ns, ext.SecretName, profile.Engine); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// ReadExternalDatabase reads the connection of an external database; the
// password stays in its Secret and reaches the application by reference.
func ReadExternalDatabase(ctx context.Context, apiReader client.Reader, ns, name string, engine crmv1alpha1.DatabaseEngine) (*resources.ExternalDatabase, error) {
	s := &corev1.Secret{}
	if err := apiReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		return nil, fmt.Errorf("reading Secret %s of spec.database.external: %w", name, err)
	}
	for _, k := range []string{"host", "database", "username", "password"} {
		if len(s.Data[k]) == 0 {
			return nil, fmt.Errorf("spec.database.external: Secret %s has no key %q", name, k)
		}
	}
	port := crm.DatabaseFor(engine).Port
	if p := string(s.Data["port"]); p != "" {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("spec.database.external: Secret %s: port %q is not a TCP port", name, p)
		}
		port = int32(n)
	}
	return &resources.ExternalDatabase{
		Host: string(s.Data["host"]), Port: port, Name: string(s.Data["database"]), User: string(s.Data["username"]), SecretName: name,
	}, nil
}

// DatabaseRunning reports whether the environment's database serves.
func DatabaseRunning(ctx context.Context, c client.Client, in *resources.EnvironmentInput) (bool, string) {
	if in.External != nil {
		return true, ""
	}
	return kube.WorkloadReady(ctx, c, kube.StatefulSet, in.Env.Namespace, resources.DatabaseName(in.Env.Name), false, nil)
}

// RandomSecret returns 32 random bytes in hex, so that every product takes
// it as it is: in a URL, a config file and a command's argument (EspoCRM's
// entrypoint passes the database password to `bin/command config:set`,
// which reads a value beginning with "-" as an option and fails:
// espocrm/espocrm-docker@c748146 latest/apache/docker-entrypoint.sh 185-190).
func RandomSecret() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return []byte(hex.EncodeToString(b)), nil
}
