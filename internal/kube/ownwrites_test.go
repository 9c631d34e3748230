package kube

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

func TestOwnWritesTellAStaleCacheCopy(t *testing.T) {
	copyAt := func(name, rv string) *crmv1alpha1.Increment {
		return &crmv1alpha1.Increment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "acme", ResourceVersion: rv}}
	}
	cases := []struct {
		name   string
		cached *crmv1alpha1.Increment
		behind bool
	}{
		{"the copy before our write", copyAt("sprint-1", "119"), true},
		{"the copy of our write", copyAt("sprint-1", "120"), false},
		{"someone wrote after us", copyAt("sprint-1", "121"), false},
		{"a copy whose version is not an integer", copyAt("sprint-1", "x"), false},
		{"an object we never wrote", copyAt("sprint-3", "5"), false},
		{"an object whose write had no integer version", copyAt("sprint-2", "5"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var w OwnWrites
			w.Note(copyAt("sprint-1", "120"))
			w.Note(copyAt("sprint-2", "not-a-number")) // never judged behind
			if got := w.CacheBehind(tc.cached); got != tc.behind {
				t.Errorf("cacheBehind = %v, want %v", got, tc.behind)
			}
		})
	}

	t.Run("a forgotten object is not judged behind", func(t *testing.T) {
		var w OwnWrites
		w.Note(copyAt("sprint-1", "120"))
		w.Forget(client.ObjectKeyFromObject(copyAt("sprint-1", "")))
		if w.CacheBehind(copyAt("sprint-1", "119")) {
			t.Error("judged behind")
		}
	})

	t.Run("only writes in flight are held", func(t *testing.T) {
		var w OwnWrites
		w.Note(copyAt("sprint-1", "120"))
		if !w.CacheBehind(copyAt("sprint-1", "119")) {
			t.Fatal("the copy before our write is not judged behind")
		}
		if w.CacheBehind(copyAt("sprint-1", "120")) {
			t.Fatal("the copy of our write is judged behind")
		}
		if len(w.m) != 0 {
			t.Errorf("%d records held after the cache caught up, want 0", len(w.m))
		}
	})

	t.Run("a reconcile notes only what it wrote", func(t *testing.T) {
		var w OwnWrites
		obj := copyAt("sprint-1", "120")
		w.NoteIfWritten(obj, "120")
		if len(w.m) != 0 {
			t.Fatalf("noted a read as a write: %v", w.m)
		}
		obj.ResourceVersion = "121" // a write's response
		w.NoteIfWritten(obj, "120")
		if !w.CacheBehind(copyAt("sprint-1", "120")) {
			t.Error("the write was not noted")
		}
	})

	t.Run("the write's event wakes only a reconcile that waits for it", func(t *testing.T) {
		var w OwnWrites
		wakes := func(rv string) bool {
			return w.CaughtUp().Update(event.UpdateEvent{ObjectOld: copyAt("sprint-1", "100"), ObjectNew: copyAt("sprint-1", rv)})
		}
		w.Note(copyAt("sprint-1", "120"))
		if wakes("120") {
			t.Error("woke a reconciler nobody holds back")
		}
		if !w.CacheBehind(copyAt("sprint-1", "119")) {
			t.Fatal("the copy before our write is not judged behind")
		}
		if wakes("119") {
			t.Error("an update older than the write woke the reconciler")
		}
		if !wakes("120") || !wakes("121") {
			t.Error("the update that holds the write did not wake the reconciler")
		}
		if w.CaughtUp().Create(event.CreateEvent{Object: copyAt("sprint-1", "120")}) {
			t.Error("a create passed")
		}
		w.CacheBehind(copyAt("sprint-1", "120"))
		if wakes("121") {
			t.Error("woke the reconciler after the cache caught up")
		}
	})
}
