// Package agentjob is the core the kinds that run crm-agent in Jobs share
// (Backup, Restore, ErasureRequest, and the environment's and increment's
// own agent steps): what they are built with, what a Job needs to know of
// its environment, and how a Job's outcome is read. Their reconcile frame
// is kube.Reconcile.
package agentjob

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/resources"
)

// Deps is what every agent-Job reconciler is built with.
type Deps struct {
	client.Client
	// APIReader reads what the cache does not hold or may hold late.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// AgentImage holds crm-agent at /crm-agent.
	AgentImage string
	// AgentImageVolume mounts AgentImage into the Jobs instead of copying
	// crm-agent out of it (resources.AgentJobInput).
	AgentImageVolume bool
	// Workers is the number of concurrent reconciles.
	Workers int
	// Tolerations are added to every pod the operator creates.
	Tolerations []corev1.Toleration
	// Images is where the default images of its pods are pulled from.
	Images resources.Images
	Clock  kube.Clock
}

// AgentJob builds a crm-agent Job of in, crm-agent delivered as the
// operator is configured to (AgentImage, AgentImageVolume).
func (d Deps) AgentJob(in resources.AgentJobInput) (*batchv1.Job, error) {
	in.AgentImage, in.AgentImageVolume = d.AgentImage, d.AgentImageVolume
	return resources.AgentJob(in)
}
