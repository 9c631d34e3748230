package agentjob

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

// JobOutcome reads a finished Job's result from its pod's termination message.
func JobOutcome(ctx context.Context, c client.Client, job *batchv1.Job) (done bool, res agent.Result, why string) {
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
	if !finished {
		return false, res, ""
	}
	pods, err := jobPods(ctx, c, job)
	if err != nil {
		return true, res, err.Error()
	}
	var newest *corev1.ContainerStateTerminated
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; cs.Name == "agent" && t != nil && t.Message != "" &&
				(newest == nil || t.FinishedAt.After(newest.FinishedAt.Time)) {
				newest = t
			}
		}
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

// jobPods lists a Job's pods from the cache, which holds the operator's Job pods.
func jobPods(ctx context.Context, c client.Client, job *batchv1.Job) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(job.Namespace), client.MatchingLabels{"batch.kubernetes.io/job-name": job.Name}); err != nil {
		return nil, err
	}
	return pods.Items, nil
}
