package erasure

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
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/controllers/agentjob"
	"github.com/crmops/crm-operator/controllers/shared"
	"github.com/crmops/crm-operator/internal/agent"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/resources"
)

// Reconciler erases one person from every environment of a
// project with crm-agent erase, one Job per environment, and then keeps only
// the salted hash of the person's address (GDPR Art. 17).
type Reconciler struct {
	agentjob.Deps
}

// +kubebuilder:rbac:groups=crm.crmops.io,resources=erasurerequests,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=crm.crmops.io,resources=erasurerequests/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

// Reconcile moves an ErasureRequest from Pending through Running to Completed.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return kube.Reconcile(ctx, r.Client, req.NamespacedName, &crmv1alpha1.ErasureRequest{}, r)
}

// Settle removes a completed request's identifiers.
func (r *Reconciler) Settle(ctx context.Context, er *crmv1alpha1.ErasureRequest) (bool, ctrl.Result, error) {
	if er.Status.Phase == crmv1alpha1.ErasureCompleted {
		return true, ctrl.Result{}, r.forgetIdentifiers(ctx, er)
	}
	return false, ctrl.Result{}, nil
}

// Status is the object's status and its observedGeneration.
func (r *Reconciler) Status(o *crmv1alpha1.ErasureRequest) (any, *int64) {
	return o.Status, &o.Status.ObservedGeneration
}

// forgetIdentifiers removes the person's address and external id from the
// spec once every environment has erased the person: from then on the
// cluster holds only their salted hashes.
func (r *Reconciler) forgetIdentifiers(ctx context.Context, er *crmv1alpha1.ErasureRequest) error {
	if er.Spec.Subject.Email == "" && er.Spec.Subject.ExternalID == "" {
		return nil
	}
	patch := client.MergeFrom(er.DeepCopy())
	er.Spec.Subject = crmv1alpha1.ErasureSubject{}
	if err := r.Patch(ctx, er, patch); err != nil {
		return err
	}
	kube.Audit(ctx, r.Recorder, er, corev1.EventTypeNormal, "IdentifiersRemoved", "Erase",
		"the subject's identifiers are removed from the request; only their salted hashes are kept")
	return nil
}

func (r *Reconciler) state(er *crmv1alpha1.ErasureRequest, phase crmv1alpha1.ErasurePhase, status metav1.ConditionStatus, reason, msg string) {
	er.Status.Phase = phase
	kube.SetCondition(&er.Status.Conditions, er.Generation, crmv1alpha1.ConditionComplete, status, reason, msg)
}

// Step advances the request by what it observes and starts.
func (r *Reconciler) Step(ctx context.Context, er *crmv1alpha1.ErasureRequest, _ kube.Persist) (ctrl.Result, error) {
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
	completed, failed, running := 0, "", false
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
		case crmv1alpha1.ErasureRunning:
			running = true
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
		kube.Audit(ctx, r.Recorder, er, corev1.EventTypeNormal, "Erased", "Erase",
			"the subject is erased from all %d environments of project %s", len(entries), er.Spec.ProjectRef.Name)
	default:
		r.state(er, crmv1alpha1.ErasureRunning, metav1.ConditionFalse, "Erasing",
			fmt.Sprintf("erased in %d of %d environments", completed, len(entries)))
	}
	if running {
		return ctrl.Result{RequeueAfter: agentjob.JobCheck}, nil // and the Jobs' watch brings us back
	}
	return ctrl.Result{}, nil
}

// eraseIn advances the erasure in one environment.
func (r *Reconciler) eraseIn(ctx context.Context, er *crmv1alpha1.ErasureRequest, env *crmv1alpha1.Environment,
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
	in, err := r.LoadEnvironmentInput(ctx, env.Namespace, env.Name)
	if err != nil {
		return pending(err.Error())
	}
	e.JobName = resources.AgentJobName(er.Name+"-"+env.Name, "erase")
	job := &batchv1.Job{}
	err = r.Get(ctx, types.NamespacedName{Namespace: er.Namespace, Name: e.JobName}, job)
	if apierrors.IsNotFound(err) {
		// A hibernated database is started for the erasure (the Environment
		// controller sees the pending request).
		if ok, msg := agentjob.DatabaseRunning(ctx, r.Client, in); !ok {
			return pending(msg)
		}
		job, err := r.AgentJob(resources.AgentJobInput{
			EnvironmentInput: in, Command: "erase", JobName: e.JobName,
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
	done, res, why := agentjob.JobOutcome(ctx, r.Client, r.APIReader, job)
	switch {
	case !done:
		reason, msg, expired := r.NotStarting(ctx, job)
		switch {
		case expired:
			e.Phase, e.Message = crmv1alpha1.ErasureFailed, fmt.Sprintf("%s, for %s: the agent never ran, nothing was erased", msg, agentjob.StartDeadline)
		case reason != "":
			e.Phase, e.Message = crmv1alpha1.ErasureRunning, msg
		default:
			e.Phase, e.Message = crmv1alpha1.ErasureRunning, "crm-agent erases the subject in Job "+e.JobName
		}
	case res.Error != "" || why != "":
		e.Phase, e.Message = crmv1alpha1.ErasureFailed, res.Error+why
	default:
		now := metav1.Now()
		e.Phase, e.Message, e.Statements, e.CompletedAt = crmv1alpha1.ErasureCompleted, "erased", res.Size, &now
		kube.Audit(ctx, r.Recorder, er, corev1.EventTypeNormal, "ErasedInEnvironment", "Erase",
			"the subject is erased in environment %s (%d statements)", env.Name, res.Size)
	}
	return e, nil
}

// salt returns the project's erasure salt, creating its Secret once. The
// salt is random per project, so that a hash cannot be matched against a
// list of addresses without it, nor linked across projects.
func (r *Reconciler) salt(ctx context.Context, project *crmv1alpha1.ImplementationProject) (string, error) {
	key := types.NamespacedName{Namespace: project.Name, Name: crmv1alpha1.ErasureSaltSecretName}
	s := &corev1.Secret{}
	err := r.Get(ctx, key, s)
	if apierrors.IsNotFound(err) {
		value, rerr := shared.RandomSecret()
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

// SetupWithManager registers the reconciler; it follows its Jobs and their
// pods, the project's Environments and Restores.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.ErasureRequest{}).
		Owns(&batchv1.Job{}).
		// An agent pod that cannot start is named at once (eraseIn).
		Watches(&corev1.Pod{}, kube.EnqueueForJobPods(mgr.GetClient(), kube.ControllerOfKind("ErasureRequest")), builder.WithPredicates(kube.PodStartChanged())).
		Watches(&crmv1alpha1.Environment{}, unfinishedErasures(mgr.GetClient())).
		Watches(&crmv1alpha1.Restore{}, unfinishedErasures(mgr.GetClient())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
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
		if !resources.RestoreFinished(rs.Status.Phase) {
			running[rs.Spec.EnvironmentRef.Name] = rs.Name
		}
	}
	return running, nil
}
