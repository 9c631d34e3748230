package kube

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
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// The operator's Jobs (crm-agent's, an increment's migration, an
// environment's installation or upgrade) are judged here alike: whether
// they finished, whether they failed and why, and whether their pod cannot
// start and why. What each kind does about it (fail its work at once, or
// wait for the Job's own deadline) is the kind's.

// JobFinished reads a Job's conditions: finished once it completed
// (Complete, or SuccessCriteriaMet: its pods succeeded and the Job
// controller adds Complete once it has finished with them, one watch hop
// later) or failed; why a failed Job failed is its condition's message,
// else its reason.
func JobFinished(job *batchv1.Job) (finished, failed bool, why string) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			finished = true
		case batchv1.JobFailed:
			finished, failed, why = true, true, c.Message
			if why == "" {
				why = c.Reason
			}
		}
	}
	return finished, failed, why
}

// JobPods lists a Job's pods from r: the cache, which holds the pods of
// the operator's Jobs (controllers.CacheOptions), or the API server.
func JobPods(ctx context.Context, r client.Reader, job *batchv1.Job) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(job.Namespace), client.MatchingLabels{batchv1.JobNameLabel: job.Name}); err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// CannotStart is why a pod of a running Job cannot start without a change
// outside it (NotStarting: its image cannot be pulled, its Secret or key
// is missing).
type CannotStart struct {
	// Reason is the kubelet's, e.g. ImagePullBackOff.
	Reason string
	// Message names the Job, the pod, the container and its image, and the
	// kubelet's reason and message.
	Message string
	// Since is when the pod was created.
	Since time.Time
}

// JobCannotStart says why a pod of job cannot start, read from r (see
// JobPods); ok is false when none is held so, or when the pods could not
// be read (the next look tells).
func JobCannotStart(ctx context.Context, r client.Reader, job *batchv1.Job) (why CannotStart, ok bool) {
	pods, err := JobPods(ctx, r, job)
	if err != nil {
		return CannotStart{}, false
	}
	for i := range pods {
		p := &pods[i]
		cs := WaitingFor(p, NotStarting)
		if cs == nil {
			continue
		}
		w := cs.State.Waiting
		return CannotStart{
			Reason: w.Reason,
			Message: fmt.Sprintf("Job %s: pod %s cannot start container %s (image %s): %s: %s",
				job.Name, p.Name, cs.Name, imageOf(p, cs), w.Reason, w.Message),
			Since: p.CreationTimestamp.Time,
		}, true
	}
	return CannotStart{}, false
}

// imageOf is the image a container status is for: as the kubelet reports
// it, else as the pod's spec names it.
func imageOf(p *corev1.Pod, cs *corev1.ContainerStatus) string {
	if cs.Image != "" {
		return cs.Image
	}
	for _, containers := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range containers {
			if c.Name == cs.Name {
				return c.Image
			}
		}
	}
	return "unknown"
}

// PodStartChanged passes the pod updates that change whether, and why, a
// pod cannot start: a Job's own status tells when it ends, never that its
// pod waits for an image.
func PodStartChanged() predicate.Predicate {
	return OnlyWhen(func(obj client.Object) any {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return nil
		}
		if cs := WaitingFor(p, NotStarting); cs != nil {
			return cs.Name + "/" + cs.State.Waiting.Reason
		}
		return ""
	})
}

// EnqueueForJobPods wakes what of maps a pod's Job to (the Job read from
// c, named by the pod's label batchv1.JobNameLabel): a pod's end or its
// waiting state is seen without waiting for the Job's status.
func EnqueueForJobPods(c client.Reader, of handler.MapFunc) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		name := obj.GetLabels()[batchv1.JobNameLabel]
		if name == "" {
			return nil
		}
		job := &batchv1.Job{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}, job); err != nil {
			return nil
		}
		return of(ctx, job)
	})
}

// ControllerOfKind maps an object to its controller, when that is of kind.
func ControllerOfKind(kind string) handler.MapFunc {
	return func(_ context.Context, obj client.Object) []reconcile.Request {
		owner := metav1.GetControllerOf(obj)
		if owner == nil || owner.Kind != kind {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: owner.Name}}}
	}
}

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

// JobGone is Gone for a Job; fail receives the reason's message.
func JobGone(ctx context.Context, apiReader client.Reader, ns, name string, fail func(msg string)) (ctrl.Result, error) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	return Gone(ctx, apiReader, job, func() { fail(fmt.Sprintf("Job %s was deleted before it reported a result", name)) })
}
