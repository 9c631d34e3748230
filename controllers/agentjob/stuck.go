package agentjob

import (
	"context"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/crmops/crm-operator/internal/kube"
)

// StartDeadline is how long an agent Job's pod may wait to start (its image
// not pulled, its Secret or key missing) before the work it was for fails:
// the agent never ran, so nothing was changed, and the Job itself would
// wait out its own deadline.
const StartDeadline = 10 * time.Minute

// JobCheck is how often a running agent Job is looked at: StartDeadline
// passes without an event.
const JobCheck = 30 * time.Second

// NotStarting says why a running Job's pod cannot start (reason "" when
// none is held so; kube.JobCannotStart), and expired once it has waited
// StartDeadline. Its pods are in the cache (the operator's Job pods are).
func (d Deps) NotStarting(ctx context.Context, job *batchv1.Job) (reason, msg string, expired bool) {
	why, ok := kube.JobCannotStart(ctx, d.Client, job)
	if !ok {
		return "", "", false
	}
	return why.Reason, why.Message, d.Clock.Now().Sub(why.Since) >= StartDeadline
}
