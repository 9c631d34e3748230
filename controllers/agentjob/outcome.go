package agentjob

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/crmops/crm-operator/internal/agent"
)

// Gone handles an object the status says was created but the cache does not
// have. If the API server confirms it is gone (deleted mid-run), fail is
// called: creating it again would make retries unbounded and could run a
// backup, restore or migration twice. If the API server still has it, the
// cache is behind (a restarted manager, a watch not yet delivered) and the
// owner looks again shortly: the cache alone never fails a step whose
// object was just created.
func Gone(ctx context.Context, apiReader client.Reader, obj client.Object, fail func()) (ctrl.Result, error) {
	err := apiReader.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	switch {
	case apierrors.IsNotFound(err):
		fail()
		return ctrl.Result{}, nil
	case err != nil:
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: time.Second}, nil
}

// JobGone is gone for an agent Job; fail receives the reason's message.
func JobGone(ctx context.Context, apiReader client.Reader, ns, name string, fail func(msg string)) (ctrl.Result, error) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	return Gone(ctx, apiReader, job, func() { fail(fmt.Sprintf("Job %s was deleted before it reported a result", name)) })
}

// JobOutcome reads a finished Job's result from its pod's termination
// message: from the cache, and from the API server (live) when the cache
// holds no result yet. After a watch broke (an API server restart), the
// Job's informer may see the Job finished while the pods' informer is still
// backing off: the cache alone never fails a step whose result exists.
func JobOutcome(ctx context.Context, c client.Client, live client.Reader, job *batchv1.Job) (done bool, res agent.Result, why string) {
	finished, failed := false, false
	for _, cond := range job.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch cond.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			// SuccessCriteriaMet: the pods succeeded; Complete follows once
			// the Job controller has finished with them, one watch hop later.
			finished = true
		case batchv1.JobFailed:
			finished, failed, why = true, true, cond.Message
			if why == "" {
				why = cond.Reason
			}
		}
	}
	pods, err := jobPods(ctx, c, job)
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
		if pods, err = jobPods(ctx, live, job); err != nil {
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

// EnqueueOwnerOfJobPod wakes the object of kind ownerKind that owns the Job
// of an agent pod: a pod's end is seen without waiting for the Job's status.
func EnqueueOwnerOfJobPod(c client.Client, ownerKind string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		name := obj.GetLabels()["batch.kubernetes.io/job-name"]
		if name == "" {
			return nil
		}
		job := &batchv1.Job{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}, job); err != nil {
			return nil
		}
		owner := metav1.GetControllerOf(job)
		if owner == nil || owner.Kind != ownerKind {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: job.Namespace, Name: owner.Name}}}
	})
}

// jobPods lists a Job's pods from c: the cache (which holds the operator's
// Job pods) or the API server.
func jobPods(ctx context.Context, c client.Reader, job *batchv1.Job) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(job.Namespace), client.MatchingLabels{"batch.kubernetes.io/job-name": job.Name}); err != nil {
		return nil, err
	}
	return pods.Items, nil
}
