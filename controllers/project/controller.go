package project

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/policy"
	"github.com/crmops/crm-operator/internal/resources"
)

// Reconciler keeps a project's namespace and shared objects in shape and
// summarises its environments in status.
type Reconciler struct {
	client.Client
	// APIReader reads children the cache holds slim, in full.
	APIReader client.Reader
	// Applied records the children found holding their desired state.
	Applied  *kube.AppliedRecords
	Recorder events.EventRecorder
	// Workers is the number of concurrent reconciles.
	Workers int
	written kube.OwnWrites
}

// +kubebuilder:rbac:groups=crm.crmops.io,resources=implementationprojects,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=crm.crmops.io,resources=implementationprojects/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=crm.crmops.io,resources=implementationprojects/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces;resourcequotas;limitranges,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// The operator grants project roles the rights it holds itself; RBAC requires
// it to hold them (or escalate/bind, which it does not get).
// +kubebuilder:rbac:groups="",resources=pods;pods/log;configmaps;events;endpoints,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=get;list;watch
// +kubebuilder:rbac:groups=crm.crmops.io,resources=erasurerequests,verbs=create

// Reconcile applies the project's namespace and shared objects and records
// the state of its environments.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return kube.Reconcile(ctx, r.Client, req.NamespacedName, &crmv1alpha1.ImplementationProject{}, r, kube.Tracking(&r.written))
}

// Settle releases a project being deleted once its data is handled.
func (r *Reconciler) Settle(ctx context.Context, project *crmv1alpha1.ImplementationProject) (bool, ctrl.Result, error) {
	return kube.Finalize(ctx, r.Client, project, crmv1alpha1.ProjectFinalizer, func() (ctrl.Result, error) { return r.reconcileDelete(ctx, project) })
}

// Status is the project's status and its observedGeneration.
func (r *Reconciler) Status(project *crmv1alpha1.ImplementationProject) (any, *int64) {
	return project.Status, &project.Status.ObservedGeneration
}

// Step applies the project's objects and summarises its environments.
func (r *Reconciler) Step(ctx context.Context, project *crmv1alpha1.ImplementationProject, _ kube.Persist) (ctrl.Result, error) {
	project.Status.Namespace = project.Name
	if free, err := r.namespaceFree(ctx, project); err != nil || !free {
		return ctrl.Result{RequeueAfter: time.Minute}, err // a label added for adoption is seen then
	}
	ap := kube.Applier{Client: r.Client, APIReader: r.APIReader, Records: r.Applied}
	desired, absent := resources.ProjectObjects(project)
	for _, obj := range desired {
		if _, err := ap.Ensure(ctx, project, obj); err != nil {
			kube.SetCondition(&project.Status.Conditions, project.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "ApplyFailed", err.Error())
			return ctrl.Result{}, err
		}
	}
	for _, obj := range absent {
		if _, err := ap.Remove(ctx, project, obj); err != nil {
			return ctrl.Result{}, err
		}
	}

	envs := &crmv1alpha1.EnvironmentList{}
	if err := r.List(ctx, envs, client.InNamespace(project.Name)); err != nil {
		return ctrl.Result{}, err
	}
	// The cache lists in no fixed order: the summary and its message must
	// not change with it.
	sort.Slice(envs.Items, func(i, j int) bool { return envs.Items[i].Name < envs.Items[j].Name })
	summaries := make([]crmv1alpha1.EnvironmentSummary, 0, len(envs.Items))
	var notReady []string
	for _, e := range envs.Items {
		if e.Spec.ProjectRef.Name != project.Name {
			continue
		}
		summaries = append(summaries, crmv1alpha1.EnvironmentSummary{
			Name: e.Name, Stage: e.Spec.Stage, Phase: e.Status.Phase, Version: e.Status.Version, URL: e.Status.URL,
		})
		if !meta.IsStatusConditionTrue(e.Status.Conditions, crmv1alpha1.ConditionReady) {
			notReady = append(notReady, e.Name)
		}
	}
	project.Status.Environments = summaries
	if err := r.recordDeliveries(ctx, project); err != nil {
		return ctrl.Result{}, err
	}

	r.recordCompliance(project, envs.Items)

	switch {
	case len(summaries) == 0:
		kube.SetCondition(&project.Status.Conditions, project.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "NoEnvironments",
			fmt.Sprintf("namespace %s is ready; create Environments in it", project.Name))
	case len(notReady) > 0:
		kube.SetCondition(&project.Status.Conditions, project.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "EnvironmentsNotReady",
			"not ready: "+strings.Join(notReady, ", "))
	default:
		kube.SetCondition(&project.Status.Conditions, project.Generation, crmv1alpha1.ConditionReady, metav1.ConditionTrue, "EnvironmentsReady",
			fmt.Sprintf("%d environments ready", len(summaries)))
	}
	return ctrl.Result{}, nil
}

// namespaceFree says whether the project may own the namespace of its name:
// one that does not exist yet, that is the project's already, that a
// project of this name left behind (its retained data), or that a cluster
// administrator labelled crm.crmops.io/adopt=<project>. Anything else is
// someone else's namespace: taking it over would hand its Secrets and
// workloads to the project's people and subject them to the project's
// default-deny policy. Ready says why, and nothing is applied.
func (r *Reconciler) namespaceFree(ctx context.Context, project *crmv1alpha1.ImplementationProject) (bool, error) {
	ns := &corev1.Namespace{}
	err := r.Get(ctx, client.ObjectKey{Name: project.Name}, ns)
	if apierrors.IsNotFound(err) {
		// The cache holds only the operator's namespaces: ask the API server.
		err = r.APIReader.Get(ctx, client.ObjectKey{Name: project.Name}, ns)
	}
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, err
	case metav1.IsControlledBy(ns, project),
		ns.Labels[crmv1alpha1.LabelManagedBy] == crmv1alpha1.ManagedByValue && ns.Labels[crmv1alpha1.LabelProject] == project.Name,
		ns.Labels[crmv1alpha1.LabelAdopt] == project.Name:
		return true, nil
	}
	msg := fmt.Sprintf("namespace %s exists and is not this project's: label it %s=%s to let the project take it over, or name the project otherwise",
		project.Name, crmv1alpha1.LabelAdopt, project.Name)
	if c := meta.FindStatusCondition(project.Status.Conditions, crmv1alpha1.ConditionReady); c == nil || c.Reason != "NamespaceTaken" {
		r.Recorder.Eventf(project, nil, corev1.EventTypeWarning, "NamespaceTaken", "Adopt", "%s", msg)
	}
	kube.SetCondition(&project.Status.Conditions, project.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "NamespaceTaken", msg)
	return false, nil
}

// recordCompliance lists on the Compliant condition (and in an Event when it
// changes) the objects that break the project's GDPR policy: ones admitted
// before the policy was tightened. Nothing is changed or deleted for it.
func (r *Reconciler) recordCompliance(project *crmv1alpha1.ImplementationProject, envs []crmv1alpha1.Environment) {
	var own []crmv1alpha1.Environment
	for _, e := range envs {
		if e.Spec.ProjectRef.Name == project.Name {
			own = append(own, e)
		}
	}
	violations := policy.Violations(project, own)
	// A copy: kube.SetCondition changes the condition in place.
	var before *metav1.Condition
	if c := meta.FindStatusCondition(project.Status.Conditions, crmv1alpha1.ConditionCompliant); c != nil {
		cp := *c
		before = &cp
	}
	if len(violations) == 0 {
		kube.SetCondition(&project.Status.Conditions, project.Generation, crmv1alpha1.ConditionCompliant, metav1.ConditionTrue, "Compliant", "every environment satisfies the GDPR policy")
		return
	}
	msg := strings.Join(violations, "; ")
	kube.SetCondition(&project.Status.Conditions, project.Generation, crmv1alpha1.ConditionCompliant, metav1.ConditionFalse, "PolicyViolations", msg)
	if before == nil || before.Message != msg {
		r.Recorder.Eventf(project, nil, corev1.EventTypeWarning, "PolicyViolations", "Audit", "%s", msg)
	}
}

// recordDeliveries derives what production runs, the delivered and accepted
// hours and the budget's condition from the increments, level-based: a
// restart recounts, never double counts.
func (r *Reconciler) recordDeliveries(ctx context.Context, project *crmv1alpha1.ImplementationProject) error {
	incs := &crmv1alpha1.IncrementList{}
	if err := r.List(ctx, incs, client.InNamespace(project.Name)); err != nil {
		return err
	}
	var latest *crmv1alpha1.Increment
	for i := range incs.Items {
		inc := &incs.Items[i]
		c := meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionPromoted)
		if inc.Spec.ProjectRef.Name != project.Name || c == nil || c.Status != metav1.ConditionTrue {
			continue
		}
		if latest == nil || inc.Spec.Sprint > latest.Spec.Sprint {
			latest = inc
		}
	}
	hours := policy.CountHours(project.Name, incs.Items)
	project.Status.DeliveredHours, project.Status.AcceptedHours, project.Status.Blocks = hours.Delivered, hours.Accepted, hours.Blocks
	r.recordBudget(project, hours)
	if latest != nil {
		c := meta.FindStatusCondition(latest.Status.Conditions, crmv1alpha1.ConditionPromoted)
		version := latest.Spec.Version
		if version == "" {
			version = latest.Spec.Image
		}
		project.Status.Production = &crmv1alpha1.ProductionStatus{Version: version, Increment: latest.Name, PromotedAt: &c.LastTransitionTime}
	}
	return nil
}

// recordBudget sets BudgetExceeded, with an Event when the budget is
// passed or nearly exhausted.
func (r *Reconciler) recordBudget(project *crmv1alpha1.ImplementationProject, hours policy.Hours) {
	status, reason, msg := policy.BudgetCondition(project.Spec.BudgetHours, hours)
	before := meta.FindStatusCondition(project.Status.Conditions, crmv1alpha1.ConditionBudgetExceeded)
	if (before == nil || before.Reason != reason) && (reason == crmv1alpha1.BudgetOver || reason == crmv1alpha1.BudgetNearlyExhausted) {
		r.Recorder.Eventf(project, nil, corev1.EventTypeWarning, reason, "Budget", "%s", msg)
	}
	kube.SetCondition(&project.Status.Conditions, project.Generation, crmv1alpha1.ConditionBudgetExceeded, status, reason, msg)
}

// reconcileDelete keeps the project, and so its namespace, while an
// environment whose data is retained exists: deleting the namespace would
// delete the retained volumes with it.
func (r *Reconciler) reconcileDelete(ctx context.Context, project *crmv1alpha1.ImplementationProject) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(project, crmv1alpha1.ProjectFinalizer) {
		return ctrl.Result{}, nil
	}
	envs := &crmv1alpha1.EnvironmentList{}
	if err := r.List(ctx, envs, client.InNamespace(project.Name)); err != nil {
		return ctrl.Result{}, err
	}
	var retained []string
	for _, e := range envs.Items {
		if resources.EffectiveDeletionPolicy(&e) == crmv1alpha1.DeletionRetain {
			retained = append(retained, e.Name)
		}
	}
	if len(retained) > 0 {
		before := project.DeepCopy() // a copy: the condition below changes in place
		msg := fmt.Sprintf("deletion waits: environments %s keep their data (deletionPolicy Retain); delete them first or set deletionPolicy: Delete",
			strings.Join(retained, ", "))
		kube.SetCondition(&project.Status.Conditions, project.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "DeletionBlocked", msg)
		if !meta.IsStatusConditionPresentAndEqual(before.Status.Conditions, crmv1alpha1.ConditionReady, metav1.ConditionFalse) ||
			meta.FindStatusCondition(before.Status.Conditions, crmv1alpha1.ConditionReady).Reason != "DeletionBlocked" {
			r.Recorder.Eventf(project, nil, corev1.EventTypeWarning, "DeletionBlocked", "Delete", "%s", msg)
		}
		return ctrl.Result{}, kube.PatchStatus(ctx, r.Client, project, before, project.Status, before.Status)
	}
	if err := r.keepNamespaceOfRetainedData(ctx, project); err != nil {
		return ctrl.Result{}, err
	}
	controllerutil.RemoveFinalizer(project, crmv1alpha1.ProjectFinalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.Update(ctx, project))
}

// keepNamespaceOfRetainedData releases the project's namespace from the
// project when environments deleted with deletionPolicy Retain left their
// claims and credentials in it: without the owner reference the garbage
// collector leaves the namespace, and so the data, in place (the project's
// other children go). The volumes themselves have reclaim policy Retain
// (the environment's deletion), which also covers a later deletion of the
// namespace by hand.
//
// Stored backups keep it too: their finalizers delete their data, and their
// recorded maximum age (status.expiresAt) goes on deleting them, only while
// the Backups exist; with the namespace they would be gone and their data
// kept for ever.
func (r *Reconciler) keepNamespaceOfRetainedData(ctx context.Context, project *crmv1alpha1.ImplementationProject) error {
	claims := &corev1.PersistentVolumeClaimList{}
	if err := r.APIReader.List(ctx, claims, client.InNamespace(project.Name), client.HasLabels{crmv1alpha1.LabelRetainedFrom}); err != nil {
		return err
	}
	backups := &crmv1alpha1.BackupList{}
	if err := r.List(ctx, backups, client.InNamespace(project.Name)); err != nil {
		return err
	}
	stored := 0
	for _, b := range backups.Items {
		if b.Status.Location != "" {
			stored++
		}
	}
	if len(claims.Items) == 0 && stored == 0 {
		return nil
	}
	ns := &corev1.Namespace{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Name: project.Name}, ns); err != nil {
		return client.IgnoreNotFound(err)
	}
	patch := client.MergeFrom(ns.DeepCopy())
	var refs []metav1.OwnerReference
	for _, ref := range ns.OwnerReferences {
		if ref.UID != project.UID {
			refs = append(refs, ref)
		}
	}
	ns.OwnerReferences = refs
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[crmv1alpha1.LabelRetainedData] = "true"
	names := make([]string, 0, len(claims.Items))
	for _, c := range claims.Items {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	if err := r.Patch(ctx, ns, patch); err != nil {
		return err
	}
	r.Recorder.Eventf(project, nil, corev1.EventTypeNormal, "NamespaceKept", "Delete",
		"namespace %s is kept: it holds the retained claims [%s] and their credentials, and %d stored backups, which expire by the maximum age each recorded", ns.Name, strings.Join(names, ", "), stored)
	log.FromContext(ctx).Info("project deleted; namespace kept for retained data", "namespace", ns.Name, "claims", names, "backups", stored)
	return nil
}

// SetupWithManager registers the reconciler; it follows its children and
// the environments in its namespace.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	children := builder.WithPredicates(kube.ChildChanged())
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.ImplementationProject{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, kube.DeletionStarted(), r.written.CaughtUp()))).
		Owns(&corev1.Namespace{}, children).
		Owns(&corev1.ResourceQuota{}, children).
		Owns(&corev1.LimitRange{}, children).
		Owns(&networkingv1.NetworkPolicy{}, children).
		Owns(&rbacv1.Role{}, children).
		Owns(&rbacv1.RoleBinding{}, children).
		Watches(&crmv1alpha1.Environment{}, kube.Coalesced(summaryDelay, func(o client.Object) reconcile.Request {
			return reconcile.Request{NamespacedName: client.ObjectKey{Name: o.(*crmv1alpha1.Environment).Spec.ProjectRef.Name}}
		}), builder.WithPredicates(environmentSummaryChanged())).
		// Not coalesced: a pipeline that saw its increment Promoted reads
		// the project's status.production next.
		Watches(&crmv1alpha1.Increment{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: o.(*crmv1alpha1.Increment).Spec.ProjectRef.Name}}}
		}), builder.WithPredicates(incrementDeliveryChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}
