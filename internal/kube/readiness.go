package kube

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// rollout is what readiness is judged from, the same for a Deployment and a
// StatefulSet.
type rollout struct {
	kind, name string
	// servedBy names what counts as serving: available pods of a
	// Deployment, ready pods of a StatefulSet.
	servedBy                       string
	want, replicas, updated, serve int32
	notObserved                    bool
	// surplus: more pods than wanted, the state only a Deployment has
	// mid-rollout (an old pod beside the new one).
	surplus bool
}

func rolloutOf(obj client.Object, appliedGeneration int64) (rollout, bool) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		want := int32(1)
		if o.Spec.Replicas != nil {
			want = *o.Spec.Replicas
		}
		st := o.Status
		return rollout{kind: "Deployment", name: o.Name, servedBy: "available", want: want, replicas: st.Replicas,
			updated: st.UpdatedReplicas, serve: st.AvailableReplicas, surplus: st.Replicas > want,
			notObserved: st.ObservedGeneration < o.Generation || o.Generation < appliedGeneration}, true
	case *appsv1.StatefulSet:
		want := int32(1)
		if o.Spec.Replicas != nil && *o.Spec.Replicas > 0 {
			want = *o.Spec.Replicas // a database scaled to zero does not serve
		}
		st := o.Status
		return rollout{kind: "StatefulSet", name: o.Name, servedBy: "ready", want: want, replicas: st.Replicas,
			updated: st.UpdatedReplicas, serve: st.ReadyReplicas,
			notObserved: st.ObservedGeneration < o.Generation || o.Generation < appliedGeneration}, true
	}
	return rollout{}, false
}

// RolledOut judges a Deployment or StatefulSet: rolled out at its current
// generation with every replica serving (or none running, when hibernate).
// A copy older than appliedGeneration, the generation last applied,
// describes the previous rollout: the cache has not caught up with the
// operator's own write.
func RolledOut(obj client.Object, hibernate bool, appliedGeneration int64) (bool, string) {
	r, ok := rolloutOf(obj, appliedGeneration)
	if !ok {
		return false, fmt.Sprintf("%T is not a workload", obj)
	}
	switch {
	case r.notObserved && !hibernate:
		// Said as the next state says it while nothing serves, so the
		// rollout's observation writes no status of its own.
		return false, fmt.Sprintf("%s %s: 0/%d replicas updated and %s", r.kind, r.name, r.want, r.servedBy)
	case r.notObserved:
		return false, fmt.Sprintf("%s %s: rollout not yet observed", r.kind, r.name)
	case hibernate && r.replicas == 0:
		return true, fmt.Sprintf("%s %s scaled to zero", r.kind, r.name)
	case hibernate:
		return false, fmt.Sprintf("%s %s: %d replicas still running", r.kind, r.name, r.replicas)
	case r.updated < r.want || r.serve < r.want || r.surplus:
		return false, fmt.Sprintf("%s %s: %d/%d replicas updated and %s", r.kind, r.name, min(r.updated, r.serve), r.want, r.servedBy)
	}
	return true, fmt.Sprintf("%s %s: %d/%d replicas %s", r.kind, r.name, r.serve, r.want, r.servedBy)
}

// Workload is the kind of workload WorkloadReady reads.
type Workload string

// The workloads whose rollout RolledOut judges.
const (
	Deployment  Workload = "Deployment"
	StatefulSet Workload = "StatefulSet"
)

// WorkloadReady reads the workload ns/name from c (the cache) and judges it
// with RolledOut; applied holds the generations the reconcile found or
// wrote (Applier.Generations), nil when it wrote none.
func WorkloadReady(ctx context.Context, c client.Reader, kind Workload, ns, name string, hibernate bool, applied map[string]int64) (bool, string) {
	var obj client.Object = &appsv1.Deployment{}
	if kind == StatefulSet {
		obj = &appsv1.StatefulSet{}
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		return false, fmt.Sprintf("%s %s: %v", kind, name, err)
	}
	return RolledOut(obj, hibernate, applied[GenerationKey(string(kind), name)])
}

// PodCheck is how often a workload that is not ready is looked at again:
// its pods' waiting states (an image that cannot be pulled, a crash loop,
// no node) change nothing the operator watches.
const PodCheck = 30 * time.Second

// NotStarting are the kubelet's reasons for a container that cannot start
// without a change outside the pod (its image, its Secret or key).
var NotStarting = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true,
}

// WaitingFor is the first of p's containers (init containers first) waiting
// for one of reasons, or nil.
func WaitingFor(p *corev1.Pod, reasons map[string]bool) *corev1.ContainerStatus {
	for _, statuses := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range statuses {
			if w := statuses[i].State.Waiting; w != nil && reasons[w.Reason] {
				return &statuses[i]
			}
		}
	}
	return nil
}

// notRunning: a container that cannot start, or keeps failing.
var notRunning = func() map[string]bool {
	m := map[string]bool{"CrashLoopBackOff": true}
	for r := range NotStarting {
		m[r] = true
	}
	return m
}()

// PodTrouble says why a pod of the selected ones does not run: a container
// waiting for a reason above, or a pod the scheduler cannot place; "" when
// none is held so (the pods may just be starting). It reads through r,
// the API server: the cache holds no workload pods.
func PodTrouble(ctx context.Context, r client.Reader, ns string, selector labels.Selector) string {
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return ""
	}
	for _, p := range pods.Items {
		if cs := WaitingFor(&p, notRunning); cs != nil {
			msg := fmt.Sprintf("pod %s: container %s: %s", p.Name, cs.Name, cs.State.Waiting.Reason)
			if cs.State.Waiting.Message != "" {
				msg += ": " + cs.State.Waiting.Message
			}
			if cs.RestartCount > 0 {
				msg += fmt.Sprintf(" (%d restarts)", cs.RestartCount)
			}
			return msg
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				return fmt.Sprintf("pod %s cannot be scheduled: %s", p.Name, c.Message)
			}
		}
	}
	return ""
}
