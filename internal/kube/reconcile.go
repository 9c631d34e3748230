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
	// Step advances obj's status in memory by what it observes and applies.
	Step(ctx context.Context, obj T) (ctrl.Result, error)
	// Status returns obj's status (a copy, compared before and after the
	// step) and where its observedGeneration is kept.
	Status(obj T) (status any, observedGeneration *int64)
}

// ReconcileOption changes the frame.
type ReconcileOption func(*frame)

type frame struct{ written *OwnWrites }

// Tracking reads through written (OwnWrites.Read) and records the
// reconcile's own writes of the object in it.
func Tracking(written *OwnWrites) ReconcileOption {
	return func(f *frame) { f.written = written }
}

// Reconcile is the frame every kind shares: read the object, let Settle end
// what takes no step, run one Step, stamp observedGeneration, and write the
// status once, only when it changed.
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
	before := obj.DeepCopyObject().(T)
	beforeStatus, _ := kind.Status(before)
	result, err := kind.Step(ctx, obj)
	_, observed := kind.Status(obj)
	*observed = obj.GetGeneration()
	status, _ := kind.Status(obj)
	if perr := PatchStatus(ctx, c, obj, before, status, beforeStatus); perr != nil && err == nil {
		err = perr
	}
	return result, err
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
