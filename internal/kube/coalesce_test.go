package kube

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// A burst of environment changes of one project is one reconcile of the
// project, queued only after the delay; another project gets its own.
func TestCoalescedEventsShareOneReconcile(t *testing.T) {
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	env := func(project, name string, rv string) client.Object {
		return &crmv1alpha1.Environment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: project, ResourceVersion: rv},
			Spec:       crmv1alpha1.EnvironmentSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: project}},
		}
	}
	const delay = time.Second
	h := Coalesced(delay, func(o client.Object) reconcile.Request {
		return reconcile.Request{NamespacedName: client.ObjectKey{Name: o.(*crmv1alpha1.Environment).Spec.ProjectRef.Name}}
	})
	ctx := context.Background()
	h.Create(ctx, event.CreateEvent{Object: env("acme", "test", "1")}, q)
	h.Update(ctx, event.UpdateEvent{ObjectOld: env("acme", "test", "1"), ObjectNew: env("acme", "test", "2")}, q)
	h.Update(ctx, event.UpdateEvent{ObjectOld: env("acme", "production", "3"), ObjectNew: env("acme", "production", "4")}, q)
	h.Delete(ctx, event.DeleteEvent{Object: env("hooli", "test", "5")}, q)
	if n := q.Len(); n != 0 {
		t.Fatalf("%d requests queued at once; want none before the delay", n)
	}
	NewWithT(t).Eventually(q.Len).WithTimeout(10 * time.Second).WithPolling(10 * time.Millisecond).Should(Equal(2))
	got := map[string]int{}
	for q.Len() > 0 {
		req, _ := q.Get()
		got[req.Name]++
		q.Done(req)
	}
	if got["acme"] != 1 || got["hooli"] != 1 || len(got) != 2 {
		t.Fatalf("queued %v; want acme and hooli once each", got)
	}
}
