package controllers

import (
	"context"
	"fmt"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/agent"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/resources"
)

// ErasureRequestReconciler erases one person from every environment of a
// project with crm-agent erase, one Job per environment, and then keeps only
// the salted hash of the person's address (GDPR Art. 17).
type ErasureRequestReconciler struct {
	client.Client
	APIReader               client.Reader
	Recorder                events.EventRecorder
	AgentImage              string
	MaxConcurrentReconciles int
	// Tolerations are added to every pod the operator creates.
	Tolerations []corev1.Toleration
}

// +kubebuilder:rbac:groups=crm.crmops.io,resources=erasurerequests,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=crm.crmops.io,resources=erasurerequests/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

// Reconcile moves an ErasureRequest from Pending through Running to Completed.
func (r *ErasureRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	er := &crmv1alpha1.ErasureRequest{}
	if err := r.Get(ctx, req.NamespacedName, er); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if er.Status.Phase == crmv1alpha1.ErasureCompleted {
		return ctrl.Result{}, r.forgetIdentifiers(ctx, er)
	}
	before := er.DeepCopy()
	result, err := r.reconcileNormal(ctx, er)
	er.Status.ObservedGeneration = er.Generation
	if perr := patchStatusIfChanged(ctx, r.Client, er, before, er.Status, before.Status); perr != nil && err == nil {
		err = perr
	}
	return result, err
}

// forgetIdentifiers removes the person's address and external id from the
// spec once every environment has erased the person: from then on the
// cluster holds only their salted hashes.
func (r *ErasureRequestReconciler) forgetIdentifiers(ctx context.Context, er *crmv1alpha1.ErasureRequest) error {
	if er.Spec.Subject.Email == "" && er.Spec.Subject.ExternalID == "" {
		return nil
	}
	patch := client.MergeFrom(er.DeepCopy())
	er.Spec.Subject = crmv1alpha1.ErasureSubject{}
	if err := r.Patch(ctx, er, patch); err != nil {
		return err
	}
	audit(ctx, r.Recorder, er, corev1.EventTypeNormal, "IdentifiersRemoved", "Erase",
		"the subject's identifiers are removed from the request; only their salted hashes are kept")
	return nil
}

func (r *ErasureRequestReconciler) state(er *crmv1alpha1.ErasureRequest, phase crmv1alpha1.ErasurePhase, status metav1.ConditionStatus, reason, msg string) {
	er.Status.Phase = phase
	setCondition(&er.Status.Conditions, er.Generation, crmv1alpha1.ConditionComplete, status, reason, msg)
}

func (r *ErasureRequestReconciler) reconcileNormal(ctx context.Context, er *crmv1alpha1.ErasureRequest) (ctrl.Result, error) {
	if er.Namespace != er.Spec.ProjectRef.Name {
		r.state(er, crmv1alpha1.ErasureFailed, metav1.ConditionFalse, "WrongNamespace",
			fmt.Sprintf("an ErasureRequest must be created in the namespace of its project %q", er.Spec.ProjectRef.Name))
		return ctrl.Result{}, nil
	}
	project := &crmv1alpha1.ImplementationProject{}
	if err := r.Get(ctx, types.NamespacedName{Name: er.Spec.ProjectRef.Name}, project); err != nil {
		if apierrors.IsNotFound(err) {
			r.state(er, crmv1alpha1.ErasurePending, metav1.ConditionFalse, "ProjectNotFound", fmt.Sprintf("ImplementationProject %q does not exist", er.Spec.ProjectRef.Name))
			return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
		}
		return ctrl.Result{}, err
	}
	if _, ok := crm.ErasureFor(project.Spec.Product.Name); !ok {
		r.state(er, crmv1alpha1.ErasureFailed, metav1.ConditionFalse, "NoErasureRules", fmt.Sprintf(
			"the operator has no erasure rules for product %s: erase the person with the product's own tools", project.Spec.Product.Name))
		return ctrl.Result{}, nil
	}
	if er.Status.SubjectHash == "" {
		if er.Spec.Subject.Email == "" {
			r.state(er, crmv1alpha1.ErasureFailed, metav1.ConditionFalse, "NoSubject", "spec.subject.email is empty")
			return ctrl.Result{}, nil
		}
		salt, err := r.salt(ctx, project)
		if err != nil {
			return ctrl.Result{}, err
		}
		er.Status.SubjectHash = agent.SubjectHash(salt, er.Spec.Subject.Email)
		if id := er.Spec.Subject.ExternalID; id != "" {
			er.Status.ExternalIDHash = agent.SubjectHash(salt, id)
		}
		r.state(er, crmv1alpha1.ErasurePending, metav1.ConditionFalse, "Hashed", "the subject's salted hash is recorded")
		return ctrl.Result{}, nil // written before any Job needs it
	}

	envs := &crmv1alpha1.EnvironmentList{}
	if err := r.List(ctx, envs, client.InNamespace(er.Namespace)); err != nil {
		return ctrl.Result{}, err
	}
	restoring, err := restoresRunning(ctx, r.Client, er.Namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	previous := map[string]crmv1alpha1.EnvironmentErasure{}
	for _, e := range er.Status.Environments {
		previous[e.Name] = e
	}
	sort.Slice(envs.Items, func(i, j int) bool { return envs.Items[i].Name < envs.Items[j].Name })
	var entries []crmv1alpha1.EnvironmentErasure
	completed, failed := 0, ""
	for i := range envs.Items {
		env := &envs.Items[i]
		if env.Spec.ProjectRef.Name != er.Spec.ProjectRef.Name {
			continue
		}
		e, err := r.eraseIn(ctx, er, env, previous[env.Name], restoring[env.Name])
		if err != nil {
			return ctrl.Result{}, err
		}
		entries = append(entries, e)
		switch e.Phase {
		case crmv1alpha1.ErasureCompleted:
			completed++
		case crmv1alpha1.ErasureFailed:
			failed = fmt.Sprintf("environment %s: %s (delete Job %s to retry)", e.Name, e.Message, e.JobName)
		}
	}
	er.Status.Environments = entries
	switch {
	case failed != "":
		r.state(er, crmv1alpha1.ErasureFailed, metav1.ConditionFalse, "EnvironmentFailed", failed)
	case completed == len(entries):
		now := metav1.Now()
		er.Status.CompletedAt = &now
		r.state(er, crmv1alpha1.ErasureCompleted, metav1.ConditionTrue, "Erased",
			fmt.Sprintf("the subject is erased from %d environments; restores re-apply the erasure", len(entries)))
		audit(ctx, r.Recorder, er, corev1.EventTypeNormal, "Erased", "Erase",
			"the subject is erased from all %d environments of project %s", len(entries), er.Spec.ProjectRef.Name)
	default:
		r.state(er, crmv1alpha1.ErasureRunning, metav1.ConditionFalse, "Erasing",
			fmt.Sprintf("erased in %d of %d environments", completed, len(entries)))
	}
	return ctrl.Result{}, nil
}

// eraseIn advances the erasure in one environment.
func (r *ErasureRequestReconciler) eraseIn(ctx context.Context, er *crmv1alpha1.ErasureRequest, env *crmv1alpha1.Environment,
	e crmv1alpha1.EnvironmentErasure, restore string) (crmv1alpha1.EnvironmentErasure, error) {
	e.Name = env.Name
	if e.Phase == crmv1alpha1.ErasureCompleted {
		return e, nil
	}
	pending := func(msg string) (crmv1alpha1.EnvironmentErasure, error) {
		e.Phase, e.Message = crmv1alpha1.ErasurePending, msg
		return e, nil
	}
	if restore != "" {
		// The restore loads older data; erasing first would be undone.
		return pending(fmt.Sprintf("waiting for Restore %s, which re-applies the erasure after loading", restore))
	}
	in, err := loadEnvironmentInput(ctx, r.Client, r.APIReader, r.Tolerations, env.Namespace, env.Name)
	if err != nil {
		return pending(err.Error())
	}
	e.JobName = resources.AgentJobName(er.Name+"-"+env.Name, "erase")
	job := &batchv1.Job{}
	err = r.Get(ctx, types.NamespacedName{Namespace: er.Namespace, Name: e.JobName}, job)
	if apierrors.IsNotFound(err) {
		// A hibernated database is started for the erasure (the Environment
		// controller sees the pending request).
		if ok, msg := databaseRunning(ctx, r.Client, in); !ok {
			return pending(msg)
		}
		job, err := resources.AgentJob(resources.AgentJobInput{
			EnvironmentInput: in, Command: "erase", JobName: e.JobName, AgentImage: r.AgentImage,
			ErasureHashes: []string{er.Status.SubjectHash},
		})
		if err != nil {
			return e, err
		}
		if err := controllerutil.SetControllerReference(er, job, r.Scheme()); err != nil {
			return e, err
		}
		if err := r.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
			return e, err
		}
		e.Phase, e.Message = crmv1alpha1.ErasureRunning, "crm-agent erases the subject in Job "+e.JobName
		return e, nil
	}
	if err != nil {
		return e, err
	}
	done, res, why := jobOutcome(ctx, r.Client, job)
	switch {
	case !done:
		e.Phase, e.Message = crmv1alpha1.ErasureRunning, "crm-agent erases the subject in Job "+e.JobName
	case res.Error != "" || why != "":
		e.Phase, e.Message = crmv1alpha1.ErasureFailed, res.Error+why
	default:
		now := metav1.Now()
		e.Phase, e.Message, e.Statements, e.CompletedAt = crmv1alpha1.ErasureCompleted, "erased", res.Size, &now
		audit(ctx, r.Recorder, er, corev1.EventTypeNormal, "ErasedInEnvironment", "Erase",
			"the subject is erased in environment %s (%d statements)", env.Name, res.Size)
	}
	return e, nil
}

// salt returns the project's erasure salt, creating its Secret once. The
// salt is random per project, so that a hash cannot be matched against a
// list of addresses without it, nor linked across projects.
func (r *ErasureRequestReconciler) salt(ctx context.Context, project *crmv1alpha1.ImplementationProject) (string, error) {
	key := types.NamespacedName{Namespace: project.Name, Name: crmv1alpha1.ErasureSaltSecretName}
	s := &corev1.Secret{}
	err := r.Get(ctx, key, s)
	if apierrors.IsNotFound(err) {
		value, rerr := randomSecret()
		if rerr != nil {
			return "", rerr
		}
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: resources.ProjectLabels(project.Name)},
			Data:       map[string][]byte{"salt": value},
		}
		if err = r.Create(ctx, s); apierrors.IsAlreadyExists(err) {
			err = r.APIReader.Get(ctx, key, s)
		}
	}
	if err != nil {
		return "", err
	}
	if len(s.Data["salt"]) < 16 {
		return "", fmt.Errorf("secret %s holds no usable salt (key salt, at least 16 bytes)", key.Name)
	}
	return string(s.Data["salt"]), nil
}

// restoresRunning maps each environment of a namespace to a Restore into it
// that is not finished.
func restoresRunning(ctx context.Context, c client.Client, ns string) (map[string]string, error) {
	list := &crmv1alpha1.RestoreList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	running := map[string]string{}
	for _, rs := range list.Items {
		if rs.Status.Phase != crmv1alpha1.RestoreCompleted && rs.Status.Phase != crmv1alpha1.RestoreFailed {
			running[rs.Spec.EnvironmentRef.Name] = rs.Name
		}
	}
	return running, nil
}

// erasureHashes lists the salted hashes of every erasure requested in a
// project namespace: a restore re-applies all of them, whatever the age of
// the backup, since erasing an already erased person changes nothing.
func erasureHashes(ctx context.Context, c client.Client, ns string, product crmv1alpha1.ProductName) ([]string, error) {
	if _, ok := crm.ErasureFor(product); !ok {
		return nil, nil
	}
	list := &crmv1alpha1.ErasureRequestList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var hashes []string
	for _, er := range list.Items {
		if er.Status.SubjectHash != "" {
			hashes = append(hashes, er.Status.SubjectHash)
		}
	}
	sort.Strings(hashes)
	return hashes, nil
}

// erasurePendingIn reports whether an erasure still has to run in env.
func erasurePendingIn(list []crmv1alpha1.ErasureRequest, env string) bool {
	for _, er := range list {
		if er.Status.Phase == crmv1alpha1.ErasureCompleted || er.Status.SubjectHash == "" {
			continue
		}
		done := false
		for _, e := range er.Status.Environments {
			done = done || (e.Name == env && e.Phase == crmv1alpha1.ErasureCompleted)
		}
		if !done {
			return true
		}
	}
	return false
}

// unfinishedErasures wakes the ErasureRequests of a namespace that are not
// Completed when an environment or a restore there changes.
func unfinishedErasures(c client.Client) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		list := &crmv1alpha1.ErasureRequestList{}
		if err := c.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, er := range list.Items {
			if er.Status.Phase != crmv1alpha1.ErasureCompleted {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&er)})
			}
		}
		return reqs
	})
}

// SetupWithManager registers the reconciler; it follows its Jobs, the
// project's Environments and Restores.
func (r *ErasureRequestReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.ErasureRequest{}).
		Owns(&batchv1.Job{}).
		Watches(&crmv1alpha1.Environment{}, unfinishedErasures(mgr.GetClient())).
		Watches(&crmv1alpha1.Restore{}, unfinishedErasures(mgr.GetClient())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}
