package agentjob

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// StartDeadline is how long an agent Job's pod may wait to start (its image
// not pulled, its Secret or key missing) before the work it was for fails:
// the agent never ran, so nothing was changed, and the Job itself would
// wait out its own deadline.
const StartDeadline = 10 * time.Minute

// stuckReasons are the kubelet's reasons for a container that cannot start
// without a change outside the pod.
var stuckReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true,
}

// Stuck says why a running Job's pod has not started, and since when;
// reason is "" when no pod is held so. Its pods are in the cache (the
// operator's Job pods are).
func Stuck(ctx context.Context, c client.Client, job *batchv1.Job) (reason, msg string, since time.Time) {
	pods, err := jobPods(ctx, c, job)
	if err != nil {
		return "", "", time.Time{}
	}
	for _, p := range pods {
		for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil && stuckReasons[w.Reason] {
				return w.Reason, fmt.Sprintf("Job %s: pod %s cannot start container %s: %s: %s", job.Name, p.Name, cs.Name, w.Reason, w.Message), p.CreationTimestamp.Time
			}
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
