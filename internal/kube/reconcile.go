package kube

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// Lifecycle is what one kind adds to the shared Reconcile frame.
type Lifecycle[T client.Object] interface {
	// Settle handles what takes no step: an object being deleted, one
	// whose work is over; it also adds the kind's finalizer. done false
	// goes on to Step.
	Settle(ctx context.Context, obj T) (done bool, res ctrl.Result, err error)
	// Step advances obj's status in memory by what it observes and
	// applies. A step that must be on record before it acts outside obj
	// (creates a Job, changes another object) calls persist first; the
	// frame writes whatever the step set after that.
	Step(ctx context.Context, obj T, persist Persist) (ctrl.Result, error)
	// Status returns obj's status (a copy, compared before and after the
	// step) and where its observedGeneration is kept.
	Status(obj T) (status any, observedGeneration *int64)
}

// Persist writes the status a step has set so far, stamped with the
// object's generation, when it differs from the status last written or
// read. A step that gets an error (a conflict, with LockedStatus) must end
// before it acts: what it was about to do is not on record.
type Persist func(ctx context.Context) error

// ReconcileOption changes the frame.
type ReconcileOption func(*frame)

type frame struct {
	written *OwnWrites
	status  []StatusOption
}

// Tracking reads through written (OwnWrites.Read) and records the
// reconcile's own writes of the object in it.
func Tracking(written *OwnWrites) ReconcileOption {
	return func(f *frame) { f.written = written }
}

// LockedStatus writes the status with optimistic locking (Locked): a
// state machine whose every step is decided on the copy it read never
// writes that step over a newer copy; the conflict requeues the reconcile,
// which decides again on fresh data.
func LockedStatus() ReconcileOption {
	return func(f *frame) { f.status = append(f.status, Locked()) }
}

// Reconcile is the frame every kind shares: read the object, let Settle end
// what takes no step, run one Step, stamp observedGeneration, and write the
// status, only when it changed: once, or also where the step persists.
func Reconcile[T client.Object](ctx context.Context, c client.Client, key types.NamespacedName, obj T, kind Lifecycle[T], opts ...ReconcileOption) (ctrl.Result, error) {
	var f frame
	for _, o := range opts {
		o(&f)
	}
	if f.written != nil {
		if ok, res, err := f.written.Read(ctx, c, key, obj); !ok {
			return res, err
		}
		defer f.written.NoteIfWritten(obj, obj.GetResourceVersion())
	} else if err := c.Get(ctx, key, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if done, res, err := kind.Settle(ctx, obj); done || err != nil {
		return res, err
	}
	w := &statusWriter[T]{c: c, obj: obj, kind: kind, opts: f.status}
	w.mark()
	result, err := kind.Step(ctx, obj, w.persist)
	if perr := w.persist(ctx); perr != nil && err == nil {
		err = perr
	}
	return result, err
}

// statusWriter writes obj's status against the copy last written or read.
type statusWriter[T client.Object] struct {
	c    client.Client
	obj  T
	kind Lifecycle[T]
	opts []StatusOption
	// before is obj as last written or read; beforeStatus its status.
	before       T
	beforeStatus any
}

func (w *statusWriter[T]) mark() {
	w.before = w.obj.DeepCopyObject().(T)
	w.beforeStatus, _ = w.kind.Status(w.before)
}

func (w *statusWriter[T]) persist(ctx context.Context) error {
	_, observed := w.kind.Status(w.obj)
	*observed = w.obj.GetGeneration()
	status, _ := w.kind.Status(w.obj)
	if err := PatchStatus(ctx, w.c, w.obj, w.before, status, w.beforeStatus, w.opts...); err != nil {
		return err
	}
	// The next write is a patch against this one (with its resourceVersion,
	// when locked).
	w.mark()
	return nil
}

// Finalize is how a kind with a finalizer settles: an object being deleted
// runs reconcileDelete (which removes the finalizer once its data is
// handled); any other gets the finalizer first. done stops the frame.
func Finalize(ctx context.Context, c client.Client, obj client.Object, finalizer string, reconcileDelete func() (ctrl.Result, error)) (done bool, res ctrl.Result, err error) {
	if !obj.GetDeletionTimestamp().IsZero() {
		res, err := reconcileDelete()
		return true, res, err
	}
	if controllerutil.AddFinalizer(obj, finalizer) {
		if err := c.Update(ctx, obj); err != nil {
			return true, ctrl.Result{}, err
		}
	}
	return false, ctrl.Result{}, nil
}
