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
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/resources"
)

// References checks on creation that an object's references resolve.
// References are immutable, so updates need no check; deletions none.
type References struct {
	// Reader reads projects, environments and backups (the manager's cache).
	Reader client.Reader
	// AllowedIngressDomains are domains, beyond each project's
	// hosting.domain, whose hosts any project may claim (a cluster-level
	// allow-list; the manager's --allowed-ingress-domains).
	AllowedIngressDomains []string
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

// Environment: its project exists; a bootstrap backup exists; its ingress
// host is its project's to claim (on creation and whenever it changes).
func (r *References) Environment() admission.Validator[*crmv1alpha1.Environment] {
	return environmentValidator{validator: validator[*crmv1alpha1.Environment]{kind: "Environment", check: func(ctx context.Context, e *crmv1alpha1.Environment) (field.ErrorList, error) {
		errs, err := r.project(ctx, e.Namespace, e.Spec.ProjectRef)
		if err != nil {
			return nil, err
		}
		if e.Spec.Bootstrap != nil {
			more, err := r.local(ctx, field.NewPath("spec", "bootstrap", "fromBackup", "name"), e.Namespace, e.Spec.Bootstrap.FromBackup.Name, &crmv1alpha1.Backup{})
			if err != nil {
				return nil, err
			}
			errs = append(errs, more...)
		}
		more, err := r.ingressHost(ctx, e)
		if err != nil {
			return nil, err
		}
		errs = append(errs, more...)
		more, err = r.realMail(ctx, e)
		return append(errs, more...), err
	}}, refs: r}
}

// realMail refuses a real SMTP server on an environment other than
// production unless its project allows real mail outside production: a
// test copy of production data must never mail real customers.
func (r *References) realMail(ctx context.Context, e *crmv1alpha1.Environment) (field.ErrorList, error) {
	if e.Spec.Mail == nil || e.Spec.Mail.SMTP == nil || e.Spec.Stage == crmv1alpha1.StageProduction {
		return nil, nil
	}
	project := &crmv1alpha1.ImplementationProject{}
	if err := r.Reader.Get(ctx, client.ObjectKey{Name: e.Spec.ProjectRef.Name}, project); err != nil {
		return nil, client.IgnoreNotFound(err) // the projectRef check reports it
	}
	if project.Spec.Mail != nil && project.Spec.Mail.AllowRealMailOutsideProduction {
		return nil, nil
	}
	return field.ErrorList{field.Forbidden(field.NewPath("spec", "mail", "smtp"), fmt.Sprintf(
		"a %s environment sends to its mail catcher: its data may be a copy of production; project %s must set spec.mail.allowRealMailOutsideProduction to send through %s",
		e.Spec.Stage, project.Name, e.Spec.Mail.SMTP.Host))}, nil
}

type environmentValidator struct {
	validator[*crmv1alpha1.Environment]
	refs *References
}

func (v environmentValidator) ValidateUpdate(ctx context.Context, old, e *crmv1alpha1.Environment) (admission.Warnings, error) {
	var errs field.ErrorList
	if ingressHostOf(old) != ingressHostOf(e) {
		more, err := v.refs.ingressHost(ctx, e)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		errs = append(errs, more...)
	}
	if !equality.Semantic.DeepEqual(old.Spec.Mail, e.Spec.Mail) {
		more, err := v.refs.realMail(ctx, e)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		errs = append(errs, more...)
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(crmv1alpha1.GroupVersion.WithKind(v.kind).GroupKind(), e.Name, errs)
	}
	return nil, nil
}

func ingressHostOf(e *crmv1alpha1.Environment) string {
	if e.Spec.Ingress == nil {
		return ""
	}
	return strings.ToLower(e.Spec.Ingress.Host)
}

// within reports whether host is domain or one of its subdomains.
func within(host, domain string) bool {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	return domain != "" && (host == domain || strings.HasSuffix(host, "."+domain))
}

// ingressHost refuses a spec.ingress.host outside the project's
// hosting.domain (unless a cluster-level allowed domain holds it), and a
// host another environment, of any project, already serves: one project
// must never take over another's traffic (or its TLS certificate's name).
// Default hosts (<env>.<project>.<domain>) are unique by construction
// (project and environment names are DNS labels) unless claimed explicitly,
// which this check compares against.
func (r *References) ingressHost(ctx context.Context, e *crmv1alpha1.Environment) (field.ErrorList, error) {
	host := ingressHostOf(e)
	if host == "" {
		return nil, nil
	}
	path := field.NewPath("spec", "ingress", "host")
	project := &crmv1alpha1.ImplementationProject{}
	if err := r.Reader.Get(ctx, client.ObjectKey{Name: e.Spec.ProjectRef.Name}, project); err != nil {
		return nil, client.IgnoreNotFound(err) // the projectRef check reports it
	}
	domain := project.Spec.Hosting.Domain
	allowed := within(host, domain) || (domain == "" && len(r.AllowedIngressDomains) == 0)
	for _, d := range r.AllowedIngressDomains {
		allowed = allowed || within(host, d)
	}
	if !allowed {
		return field.ErrorList{field.Forbidden(path, fmt.Sprintf(
			"host %s is outside hosting.domain %q of project %s; a cluster administrator may allow other domains (--allowed-ingress-domains %v)",
			host, domain, project.Name, r.AllowedIngressDomains))}, nil
	}
	envs := &crmv1alpha1.EnvironmentList{}
	if err := r.Reader.List(ctx, envs); err != nil {
		return nil, err
	}
	domains := map[string]string{}
	for i := range envs.Items {
		o := &envs.Items[i]
		if o.Namespace == e.Namespace && o.Name == e.Name {
			continue
		}
		theirs := ingressHostOf(o)
		if theirs == "" {
			d, ok := domains[o.Spec.ProjectRef.Name]
			if !ok {
				p := &crmv1alpha1.ImplementationProject{}
				if err := r.Reader.Get(ctx, client.ObjectKey{Name: o.Spec.ProjectRef.Name}, p); err == nil {
					d = p.Spec.Hosting.Domain
				}
				domains[o.Spec.ProjectRef.Name] = d
			}
			if d != "" {
				theirs = strings.ToLower(fmt.Sprintf("%s.%s.%s", o.Name, o.Spec.ProjectRef.Name, d))
			}
		}
		if theirs == host {
			return field.ErrorList{field.Duplicate(path, host+" is already served by environment "+o.Namespace+"/"+o.Name)}, nil
		}
	}
	return nil, nil
}

// Increment: its project exists, and the product can go to its version
// from the version each of the project's environments runs in one step.
func (r *References) Increment() admission.Validator[*crmv1alpha1.Increment] {
	return validator[*crmv1alpha1.Increment]{kind: "Increment", check: func(ctx context.Context, i *crmv1alpha1.Increment) (field.ErrorList, error) {
		errs, err := r.project(ctx, i.Namespace, i.Spec.ProjectRef)
		if err != nil || len(errs) > 0 || i.Spec.Version == "" {
			return errs, err
		}
		project := &crmv1alpha1.ImplementationProject{}
		if err := r.Reader.Get(ctx, client.ObjectKey{Name: i.Spec.ProjectRef.Name}, project); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		profile, err := crm.For(project.Spec.Product)
		if err != nil {
			return nil, nil // the project's own validation reports it
		}
		path := field.NewPath("spec", "version")
		if err := profile.CheckVersion(i.Spec.Version); err != nil {
			return field.ErrorList{field.Invalid(path, i.Spec.Version, err.Error())}, nil
		}
		envs := &crmv1alpha1.EnvironmentList{}
		if err := r.Reader.List(ctx, envs, client.InNamespace(i.Namespace)); err != nil {
			return nil, err
		}
		stages := project.Spec.Stages
		if len(stages) == 0 {
			stages = []string{"test", "production"}
		}
		for _, e := range envs.Items {
			if e.Spec.ProjectRef.Name != project.Name || !slices.Contains(stages, e.Name) {
				continue
			}
			if err := profile.CheckUpgrade(resources.SchemaVersion(&e), i.Spec.Version); err != nil {
				errs = append(errs, field.Invalid(path, i.Spec.Version, fmt.Sprintf("environment %s runs %s: %v", e.Name, resources.SchemaVersion(&e), err)))
			}
		}
		return errs, nil
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
		backup, env := &crmv1alpha1.Backup{}, &crmv1alpha1.Environment{}
		errs, err := r.local(ctx, field.NewPath("spec", "backupRef", "name"), rs.Namespace, rs.Spec.BackupRef.Name, backup)
		if err != nil {
			return nil, err
		}
		more, err := r.local(ctx, field.NewPath("spec", "environmentRef", "name"), rs.Namespace, rs.Spec.EnvironmentRef.Name, env)
		if err != nil || len(errs)+len(more) > 0 {
			return append(errs, more...), err
		}
		// Production takes only production's backups (the Restore controller
		// checks it again, also for backups that recorded no origin).
		if o := backup.Status.Origin; env.Spec.Stage == crmv1alpha1.StageProduction && o != nil && o.Stage != crmv1alpha1.StageProduction {
			errs = append(errs, field.Forbidden(field.NewPath("spec", "backupRef", "name"), fmt.Sprintf(
				"production environment %s takes only backups of a production environment; Backup %s was taken of %s environment %s",
				env.Name, backup.Name, o.Stage, o.Environment)))
		}
		return errs, nil
	}}
}
