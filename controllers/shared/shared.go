// Package shared holds what the operator's reconcilers are built with
// (Deps) and what more than one kind reads or makes: an external
// database's connection, a generated secret.
package shared

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/resources"
)

// Deps is what every reconciler of an environment's work is built with
// (the environment's own, its increments', and the agent Jobs' kinds,
// which add the agent's image: agentjob.Deps).
type Deps struct {
	client.Client
	// APIReader reads what the cache does not hold or may hold late.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Workers is the number of concurrent reconciles.
	Workers int
	// Tolerations are added to every pod the operator creates.
	Tolerations []corev1.Toleration
	// Images is where the default images of its pods are pulled from.
	Images resources.Images
	Clock  kube.Clock
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
