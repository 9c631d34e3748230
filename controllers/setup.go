// Package controllers holds one thin reconciler per kind of the crm.crmops.io
// API: each fetches its object and what it owns, asks the pure packages under
// internal/ for the desired state, applies it and records status once.
package controllers

import (
	ctrl "sigs.k8s.io/controller-runtime"
)

// Options tune every reconciler.
type Options struct {
	// MaxConcurrentReconciles is the number of workers of each controller.
	MaxConcurrentReconciles int
}

// SetupWithManager registers every reconciler of the operator with mgr.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	c := mgr.GetClient()
	if err := (&ImplementationProjectReconciler{Client: c, MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&EnvironmentReconciler{Client: c, MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&IncrementReconciler{Client: c, MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).SetupWithManager(mgr)
}
