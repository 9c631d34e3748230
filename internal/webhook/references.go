// Package webhook holds the operator's validating admission webhook: the
// checks that need other objects, which neither the CRD schema (one object)
// nor the admission policies (the object and its namespace) can see. A new
// Environment, Increment, Backup, Restore or ErasureRequest must refer to a
// project, environment or backup that exists, in the right namespace.
// Single-object rules stay in the CRDs, identity and GDPR rules in the
// ValidatingAdmissionPolicies of config/admission.
package webhook

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// References checks on creation that an object's references resolve.
// References are immutable, so updates need no check; deletions none.
type References struct {
	// Reader reads projects, environments and backups (the manager's cache).
	Reader client.Reader
}

// validator adapts a check of one kind to controller-runtime's Validator.
type validator[T client.Object] struct {
	kind  string
	check func(ctx context.Context, obj T) (field.ErrorList, error)
}

func (v validator[T]) ValidateCreate(ctx context.Context, obj T) (admission.Warnings, error) {
	errs, err := v.check(ctx, obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(crmv1alpha1.GroupVersion.WithKind(v.kind).GroupKind(), obj.GetName(), errs)
	}
	return nil, nil
}

func (v validator[T]) ValidateUpdate(context.Context, T, T) (admission.Warnings, error) {
	return nil, nil
}
func (v validator[T]) ValidateDelete(context.Context, T) (admission.Warnings, error) { return nil, nil }

// project checks a projectRef: the project exists and the object lives in its namespace.
func (r *References) project(ctx context.Context, ns string, ref crmv1alpha1.ProjectReference) (field.ErrorList, error) {
	path := field.NewPath("spec", "projectRef", "name")
	var errs field.ErrorList
	if ref.Name != ns {
		errs = append(errs, field.Invalid(path, ref.Name, fmt.Sprintf("must be created in the namespace of project %s (%s), not in %s", ref.Name, ref.Name, ns)))
	}
	err := r.Reader.Get(ctx, client.ObjectKey{Name: ref.Name}, &crmv1alpha1.ImplementationProject{})
	switch {
	case apierrors.IsNotFound(err):
		errs = append(errs, field.NotFound(path, ref.Name))
	case err != nil:
		return nil, err
	}
	return errs, nil
}

// local checks a reference to an object of the same namespace.
func (r *References) local(ctx context.Context, path *field.Path, ns, name string, obj client.Object) (field.ErrorList, error) {
	err := r.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		return field.ErrorList{field.NotFound(path, name)}, nil
	case err != nil:
		return nil, err
	}
	return nil, nil
}

// Environment: its project exists; a bootstrap backup exists.
func (r *References) Environment() admission.Validator[*crmv1alpha1.Environment] {
	return validator[*crmv1alpha1.Environment]{kind: "Environment", check: func(ctx context.Context, e *crmv1alpha1.Environment) (field.ErrorList, error) {
		errs, err := r.project(ctx, e.Namespace, e.Spec.ProjectRef)
		if err != nil || e.Spec.Bootstrap == nil {
			return errs, err
		}
		more, err := r.local(ctx, field.NewPath("spec", "bootstrap", "fromBackup", "name"), e.Namespace, e.Spec.Bootstrap.FromBackup.Name, &crmv1alpha1.Backup{})
		return append(errs, more...), err
	}}
}

// Increment: its project exists.
func (r *References) Increment() admission.Validator[*crmv1alpha1.Increment] {
	return validator[*crmv1alpha1.Increment]{kind: "Increment", check: func(ctx context.Context, i *crmv1alpha1.Increment) (field.ErrorList, error) {
		return r.project(ctx, i.Namespace, i.Spec.ProjectRef)
	}}
}

// ErasureRequest: its project exists.
func (r *References) ErasureRequest() admission.Validator[*crmv1alpha1.ErasureRequest] {
	return validator[*crmv1alpha1.ErasureRequest]{kind: "ErasureRequest", check: func(ctx context.Context, e *crmv1alpha1.ErasureRequest) (field.ErrorList, error) {
		return r.project(ctx, e.Namespace, e.Spec.ProjectRef)
	}}
}

// Backup: its environment exists.
func (r *References) Backup() admission.Validator[*crmv1alpha1.Backup] {
	return validator[*crmv1alpha1.Backup]{kind: "Backup", check: func(ctx context.Context, b *crmv1alpha1.Backup) (field.ErrorList, error) {
		return r.local(ctx, field.NewPath("spec", "environmentRef", "name"), b.Namespace, b.Spec.EnvironmentRef.Name, &crmv1alpha1.Environment{})
	}}
}

// Restore: its backup and environment exist.
func (r *References) Restore() admission.Validator[*crmv1alpha1.Restore] {
	return validator[*crmv1alpha1.Restore]{kind: "Restore", check: func(ctx context.Context, rs *crmv1alpha1.Restore) (field.ErrorList, error) {
		errs, err := r.local(ctx, field.NewPath("spec", "backupRef", "name"), rs.Namespace, rs.Spec.BackupRef.Name, &crmv1alpha1.Backup{})
		if err != nil {
			return nil, err
		}
		more, err := r.local(ctx, field.NewPath("spec", "environmentRef", "name"), rs.Namespace, rs.Spec.EnvironmentRef.Name, &crmv1alpha1.Environment{})
		return append(errs, more...), err
	}}
}
