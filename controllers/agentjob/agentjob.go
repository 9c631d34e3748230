// Package agentjob is the core the kinds that run crm-agent in Jobs share
// (Backup, Restore, ErasureRequest): what they are built with, what a Job
// needs to know of its environment, and how the agent's result is read.
// Their reconcile frame is kube.Reconcile; their Jobs are judged with the
// other Jobs' toolkit in internal/kube (kube.JobFinished,
// kube.JobCannotStart).
package agentjob

import (
	batchv1 "k8s.io/api/batch/v1"

	"github.com/crmops/crm-operator/controllers/shared"
	"github.com/crmops/crm-operator/internal/resources"
)

// Deps is what every agent-Job reconciler is built with: what every
// reconciler is, and where crm-agent comes from.
type Deps struct {
	shared.Deps
	// AgentImage holds crm-agent at /crm-agent.
	AgentImage string
	// AgentImageVolume mounts AgentImage into the Jobs instead of copying
	// crm-agent out of it (resources.AgentJobInput).
	AgentImageVolume bool
}

// AgentJob builds a crm-agent Job of in, crm-agent delivered as the
// operator is configured to (AgentImage, AgentImageVolume).
func (d Deps) AgentJob(in resources.AgentJobInput) (*batchv1.Job, error) {
	in.AgentImage, in.AgentImageVolume = d.AgentImage, d.AgentImageVolume
	return resources.AgentJob(in)
}
