package agentjob

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crmops/crm-operator/internal/kube"
)

// StartDeadline is how long an agent Job's pod may wait to start (its image
// not pulled, its Secret or key missing) before the work it was for fails:
// the agent never ran, so nothing was changed, and the Job itself would
// wait out its own deadline.
const StartDeadline = 10 * time.Minute

// Stuck says why a running Job's pod has not started, and since when;
// reason is "" when no pod is held so. Its pods are in the cache (the
// operator's Job pods are).
func Stuck(ctx context.Context, c client.Client, job *batchv1.Job) (reason, msg string, since time.Time) {
	pods, err := jobPods(ctx, c, job)
	if err != nil {
		return "", "", time.Time{}
	}
	for _, p := range pods {
		if cs := kube.WaitingFor(&p, kube.NotStarting); cs != nil {
			w := cs.State.Waiting
			return w.Reason, fmt.Sprintf("Job %s: pod %s cannot start container %s: %s: %s", job.Name, p.Name, cs.Name, w.Reason, w.Message), p.CreationTimestamp.Time
		}
	}
	return "", "", time.Time{}
}

// JobCheck is how often a running agent Job is looked at: its pods'
// waiting states wake no reconcile.
const JobCheck = 30 * time.Second

// NotStarting says why a running Job's pod cannot start (reason "" when
// none is held so), and expired once it has waited StartDeadline.
func (d Deps) NotStarting(ctx context.Context, job *batchv1.Job) (reason, msg string, expired bool) {
	reason, msg, since := Stuck(ctx, d.Client, job)
	if reason == "" {
		return "", "", false
	}
	return reason, msg, d.Clock.Now().Sub(since) >= StartDeadline
}
