package agentjob

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crmops/crm-operator/internal/agent"
	"github.com/crmops/crm-operator/internal/kube"
)

// JobOutcome reads a finished Job's result from its pod's termination
// message: from the cache, and from the API server (live) when the cache
// holds no result yet. After a watch broke (an API server restart), the
// Job's informer may see the Job finished while the pods' informer is still
// backing off: the cache alone never fails a step whose result exists.
func JobOutcome(ctx context.Context, c client.Client, live client.Reader, job *batchv1.Job) (done bool, res agent.Result, why string) {
	finished, failed, why := kube.JobFinished(job)
	pods, err := kube.JobPods(ctx, c, job)
	if err != nil {
		return finished, res, err.Error()
	}
	if !finished {
		// A pod of this Job whose agent exited 0 decides the Job's success
		// (one completion, no success policy): acting on it does not wait
		// for the Job controller, which batches pod updates for a second,
		// and then for the Job's watch.
		if t := succeededAgent(job, pods); t != nil {
			parsed, err := agent.ParseResult(t.Message)
			if err != nil {
				return true, res, err.Error()
			}
			return true, parsed, ""
		}
		return false, res, ""
	}
	newest := newestResult(pods)
	if newest == nil {
		if pods, err = kube.JobPods(ctx, live, job); err != nil {
			return false, res, "" // looked at again: the Job's and its pods' watches bring us back
		}
		newest = newestResult(pods)
	}
	if newest == nil {
		if failed {
			return true, res, why
		}
		return true, res, "the agent's pod reported no result"
	}
	parsed, err := agent.ParseResult(newest.Message)
	if err != nil {
		return true, res, err.Error()
	}
	if failed && parsed.Error == "" {
		parsed.Error = why
	}
	return true, parsed, ""
}

// newestResult is the latest agent container's end that carries a result.
func newestResult(pods []corev1.Pod) *corev1.ContainerStateTerminated {
	var newest *corev1.ContainerStateTerminated
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; cs.Name == "agent" && t != nil && t.Message != "" &&
				(newest == nil || t.FinishedAt.After(newest.FinishedAt.Time)) {
				newest = t
			}
		}
	}
	return newest
}

// succeededAgent is the agent container of a pod of job (by owner UID: a
// deleted Job's pods may outlive it under the same name) that exited 0 with
// a result. Its pod never restarts it (restartPolicy Never), so the pod will
// succeed: the kubelet reports that phase a second or more later, once it
// has torn the pod's sandbox down.
func succeededAgent(job *batchv1.Job, pods []corev1.Pod) *corev1.ContainerStateTerminated {
	for _, p := range pods {
		owner := metav1.GetControllerOf(&p)
		if p.Status.Phase == corev1.PodFailed || p.Spec.RestartPolicy != corev1.RestartPolicyNever || owner == nil || owner.UID != job.UID {
			continue
		}
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; cs.Name == "agent" && t != nil && t.ExitCode == 0 && t.Message != "" {
				return t
			}
		}
	}
	return nil
}
