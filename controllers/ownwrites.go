package controllers

import (
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ownWrites remembers the resourceVersion of each object's last write by
// its reconciler. Another event (an Environment, a Backup) can wake the
// reconciler before the cache holds that write; a step decided on the
// older copy ends in an optimistic-lock conflict, a wasted reconcile and a
// backoff (make bench counted 132 conflicts in 50 promotions). The write's
// own watch event is on its way and wakes the reconciler again, so a
// reconcile that finds the cache behind its own write just ends.
//
// resourceVersions are opaque to clients by contract; an etcd-backed API
// server writes the etcd revision, an integer that only grows. A version
// that is not an integer is never judged behind: the reconcile goes on as
// it would without this record.
type ownWrites struct {
	mu sync.Mutex
	m  map[types.NamespacedName]uint64
}

// note records obj's resourceVersion after a write that returned it.
func (w *ownWrites) note(obj client.Object) {
	rv, err := strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[types.NamespacedName]uint64{}
	}
	w.m[client.ObjectKeyFromObject(obj)] = rv
}

// cacheBehind reports whether obj, as read from the cache, is older than
// the reconciler's last write of it. A record the cache has caught up with
// is dropped: only writes in flight are held.
func (w *ownWrites) cacheBehind(obj client.Object) bool {
	rv, err := strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
	if err != nil {
		return false
	}
	key := client.ObjectKeyFromObject(obj)
	w.mu.Lock()
	defer w.mu.Unlock()
	written, ok := w.m[key]
	if ok && rv >= written {
		delete(w.m, key)
	}
	return ok && rv < written
}

// noteIfWritten records obj's resourceVersion when it moved from read, the
// version the reconcile read: a write of it returned a newer one.
func (w *ownWrites) noteIfWritten(obj client.Object, read string) {
	if obj.GetResourceVersion() != read {
		w.note(obj)
	}
}

// cacheCatchUp is how long a reconcile that found the cache behind its own
// write waits for it, when that write's event does not wake it (status
// writes pass no predicate of the project and environment controllers).
const cacheCatchUp = 200 * time.Millisecond

// forget drops the record of an object that is gone or needs no more work.
func (w *ownWrites) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}
