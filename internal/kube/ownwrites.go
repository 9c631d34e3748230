package kube

import (
	"context"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// OwnWrites remembers the resourceVersion of each object's last write by
// its reconciler. Another event (an Environment, a Backup) can wake the
// reconciler before the cache holds that write; a step decided on the
// older copy ends in an optimistic-lock conflict, a wasted reconcile and a
// backoff. The write's own watch event is on its way and wakes the
// reconciler again, so a reconcile that finds the cache behind its own
// write just ends.
//
// resourceVersions are opaque to clients by contract; an etcd-backed API
// server writes the etcd revision, an integer that only grows. A version
// that is not an integer is never judged behind: the reconcile goes on as
// it would without this record.
type OwnWrites struct {
	mu sync.Mutex
	m  map[types.NamespacedName]ownWrite
}

type ownWrite struct {
	version uint64
	// waiting: a reconcile found the cache behind this write and ended;
	// the write's event must wake it (caughtUp).
	waiting bool
}

// Read opens a reconcile that keeps this record: it reads key into obj
// from c. ok is false when the reconcile has nothing to do now: the object
// is gone (its record is dropped), or the cache holds a copy older than the
// reconciler's own last write of it (CacheBehind), on which a step would be
// decided again, or a status written again with new timestamps. The write's
// event brings the reconcile back (CaughtUp), and res after CacheCatchUp
// should that event have passed before the reconcile said it waits.
func (w *OwnWrites) Read(ctx context.Context, c client.Reader, key types.NamespacedName, obj client.Object) (ok bool, res ctrl.Result, err error) {
	if err := c.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			w.Forget(key)
			return false, ctrl.Result{}, nil
		}
		return false, ctrl.Result{}, err
	}
	if w.CacheBehind(obj) {
		return false, ctrl.Result{RequeueAfter: CacheCatchUp}, nil
	}
	return true, ctrl.Result{}, nil
}

// note records obj's resourceVersion after a write that returned it.
func (w *OwnWrites) Note(obj client.Object) {
	rv, err := strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[types.NamespacedName]ownWrite{}
	}
	w.m[client.ObjectKeyFromObject(obj)] = ownWrite{version: rv}
}

// noteIfWritten records obj's resourceVersion when it moved from read, the
// version the reconcile read: a write of it returned a newer one.
func (w *OwnWrites) NoteIfWritten(obj client.Object, read string) {
	if obj.GetResourceVersion() != read {
		w.Note(obj)
	}
}

// cacheBehind reports whether obj, as read from the cache, is older than
// the reconciler's last write of it; if so, the reconciler is taken to wait
// for that write (caughtUp). A record the cache has caught up with is
// dropped: only writes in flight are held.
func (w *OwnWrites) CacheBehind(obj client.Object) bool {
	rv, err := strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
	if err != nil {
		return false
	}
	key := client.ObjectKeyFromObject(obj)
	w.mu.Lock()
	defer w.mu.Unlock()
	rec, ok := w.m[key]
	switch {
	case !ok:
		return false
	case rv >= rec.version:
		delete(w.m, key)
		return false
	}
	rec.waiting = true
	w.m[key] = rec
	return true
}

// caughtUp passes the update that brings the cache to a write a reconcile
// waits for: the project and environment controllers pass no status-only
// update otherwise, their own status writes included.
func (w *OwnWrites) CaughtUp() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			rv, err := strconv.ParseUint(e.ObjectNew.GetResourceVersion(), 10, 64)
			if err != nil {
				return false
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			rec, ok := w.m[client.ObjectKeyFromObject(e.ObjectNew)]
			return ok && rec.waiting && rv >= rec.version
		},
	}
}

// CacheCatchUp is when a reconcile that found the cache behind its own
// write comes back, should the write's event have passed the predicate
// before the reconcile said it waits.
const CacheCatchUp = time.Second

// forget drops the record of an object that is gone or needs no more work.
func (w *OwnWrites) Forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}
