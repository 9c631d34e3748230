package kube

import (
	"context"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func TestJobFinished(t *testing.T) {
	cond := func(typ batchv1.JobConditionType, reason, msg string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: msg}
	}
	for _, tc := range []struct {
		name             string
		conditions       []batchv1.JobCondition
		finished, failed bool
		why              string
	}{
		{name: "running"},
		{name: "suspended is not finished", conditions: []batchv1.JobCondition{cond(batchv1.JobSuspended, "", "")}},
		{name: "success criteria met", conditions: []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, "", "")}, finished: true},
		{name: "complete", conditions: []batchv1.JobCondition{cond(batchv1.JobComplete, "", "")}, finished: true},
		{name: "failure target is not yet failed", conditions: []batchv1.JobCondition{cond(batchv1.JobFailureTarget, "DeadlineExceeded", "")}},
		{name: "failed says its message", conditions: []batchv1.JobCondition{cond(batchv1.JobFailed, "BackoffLimitExceeded", "Job has reached the specified backoff limit")},
			finished: true, failed: true, why: "Job has reached the specified backoff limit"},
		{name: "failed without a message says its reason", conditions: []batchv1.JobCondition{cond(batchv1.JobFailed, "DeadlineExceeded", "")},
			finished: true, failed: true, why: "DeadlineExceeded"},
		{name: "a condition that is not true does not count", conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionFalse}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			finished, failed, why := JobFinished(&batchv1.Job{Status: batchv1.JobStatus{Conditions: tc.conditions}})
			if finished != tc.finished || failed != tc.failed || why != tc.why {
				t.Errorf("JobFinished = %v, %v, %q; want %v, %v, %q", finished, failed, why, tc.finished, tc.failed, tc.why)
			}
		})
	}
}

// A pod of a Job that cannot start is named with its container, the image
// it waits for (as the kubelet reports it, else as the pod names it) and
// the kubelet's reason; a pod that waits for its turn is not.
func TestJobCannotStart(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "sprint-1-migrate-test", Namespace: "acme"}}
	pod := func(name, job string, waiting *corev1.ContainerStateWaiting, reportedImage string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "acme", Labels: map[string]string{batchv1.JobNameLabel: job}},
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "wait-for-database", Image: "postgres:17.9"}},
				Containers:     []corev1.Container{{Name: "migration", Image: "registry.example.com/acme/odoo:18.1"}},
			},
			Status: corev1.PodStatus{
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "wait-for-database", State: corev1.ContainerState{
					Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "migration", Image: reportedImage, State: corev1.ContainerState{Waiting: waiting}}},
			},
		}
	}
	starting := &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	notPulled := &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}

	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(pod("sprint-1-migrate-test-a", job.Name, starting, "")).Build()
	if why, ok := JobCannotStart(ctx, c, job); ok {
		t.Errorf("a pod that is being created cannot start: %+v", why)
	}

	c = fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		pod("other-job-pod", "other", notPulled, ""),
		pod("sprint-1-migrate-test-b", job.Name, notPulled, "")).Build()
	why, ok := JobCannotStart(ctx, c, job)
	if !ok {
		t.Fatal("a pod whose image cannot be pulled is not named")
	}
	want := "Job sprint-1-migrate-test: pod sprint-1-migrate-test-b cannot start container migration (image registry.example.com/acme/odoo:18.1): ImagePullBackOff: Back-off pulling image"
	if why.Reason != "ImagePullBackOff" || why.Message != want {
		t.Errorf("JobCannotStart = %q, %q; want ImagePullBackOff, %q", why.Reason, why.Message, want)
	}

	c = fake.NewClientBuilder().WithScheme(scheme).WithObjects(pod("sprint-1-migrate-test-c", job.Name, notPulled, "registry.example.com/acme/odoo@sha256:0a1b")).Build()
	if why, _ := JobCannotStart(ctx, c, job); why.Message != "Job sprint-1-migrate-test: pod sprint-1-migrate-test-c cannot start container migration (image registry.example.com/acme/odoo@sha256:0a1b): ImagePullBackOff: Back-off pulling image" {
		t.Errorf("the image the kubelet reports is not named: %q", why.Message)
	}
}

// Only a change of whether, and why, a pod cannot start passes.
func TestPodStartChanged(t *testing.T) {
	p := PodStartChanged()
	pod := func(rv string, waiting string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: rv}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name: "migration", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: waiting}}}}}}
	}
	for _, tc := range []struct {
		from, to string
		pass     bool
	}{
		{"ContainerCreating", "ContainerCreating", false},
		{"ContainerCreating", "PodInitializing", false},
		{"ContainerCreating", "ErrImagePull", true},
		{"ErrImagePull", "ImagePullBackOff", true},
		{"ImagePullBackOff", "ImagePullBackOff", false},
		{"ImagePullBackOff", "ContainerCreating", true},
	} {
		if got := p.Update(event.UpdateEvent{ObjectOld: pod("1", tc.from), ObjectNew: pod("2", tc.to)}); got != tc.pass {
			t.Errorf("%s -> %s passed %v, want %v", tc.from, tc.to, got, tc.pass)
		}
	}
}
