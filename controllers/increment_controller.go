package controllers

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/policy"
	"github.com/crmops/crm-operator/internal/promotion"
	"github.com/crmops/crm-operator/internal/resources"
)

// IncrementReconciler carries a sprint increment from its first stage to
// production. Every step is recorded in status before the next one starts
// and is guarded by what status says already happened, so a restart never
// takes a second backup, runs a migration twice or rolls out twice.
type IncrementReconciler struct {
	client.Client
	APIReader               client.Reader
	Recorder                events.EventRecorder
	MaxConcurrentReconciles int
	Clock                   func() time.Time
	// Tolerations are added to every pod the operator creates.
	Tolerations []corev1.Toleration
	// written: this reconciler's last status write of each increment.
	written ownWrites
}

// +kubebuilder:rbac:groups=crm.crmops.io,resources=increments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=crm.crmops.io,resources=increments/status,verbs=get;update;patch
// The operator changes production's version (admission policy crm-production-version asks for
// environments/promote) and grants product owners increments/acceptance, which RBAC requires it to hold.
// +kubebuilder:rbac:groups=crm.crmops.io,resources=environments/promote;increments/acceptance,verbs=update

func (r *IncrementReconciler) now() time.Time {
	if r.Clock != nil {
		return r.Clock()
	}
	return time.Now()
}

// Reconcile advances the increment by at most one step.
func (r *IncrementReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	inc := &crmv1alpha1.Increment{}
	found, behind, err := r.written.get(ctx, r.Client, req.NamespacedName, inc)
	if err != nil || !found {
		return ctrl.Result{}, err
	}
	if behind {
		return ctrl.Result{}, nil // the watch event of our last write brings us back
	}
	deleting := !inc.DeletionTimestamp.IsZero()
	if deleting && !promotion.HoldsDeletion(&inc.Status) {
		return ctrl.Result{}, r.release(ctx, inc)
	}
	if !deleting && !promotion.Final(inc.Status.Phase) && controllerutil.AddFinalizer(inc, crmv1alpha1.IncrementFinalizer) {
		// Where the admission policy crm-data-finalizers is not installed.
		if err := r.Update(ctx, inc); err != nil {
			return ctrl.Result{}, err
		}
	}
	before := inc.DeepCopy()
	// persist writes what status holds so far, for a step that must be on
	// record before it acts outside this object; the reconcile goes on.
	persist := func() error {
		inc.Status.ObservedGeneration = inc.Generation
		if err := patchStatusLocked(ctx, r.Client, inc, before, inc.Status, before.Status); err != nil {
			return err
		}
		if inc.GetResourceVersion() != before.GetResourceVersion() {
			r.written.note(inc)
		}
		before = inc.DeepCopy()
		return nil
	}
	result, err := r.reconcileNormal(ctx, inc, persist)
	if perr := persist(); perr != nil && err == nil {
		err = perr
	}
	if err == nil && promotion.Final(inc.Status.Phase) {
		r.written.forget(req.NamespacedName)
	}
	if err == nil && deleting && !promotion.HoldsDeletion(&inc.Status) {
		err = r.release(ctx, inc)
	}
	return result, err
}

// release lets a deleted increment go: nothing of it touches data any more.
func (r *IncrementReconciler) release(ctx context.Context, inc *crmv1alpha1.Increment) error {
	if !controllerutil.ContainsFinalizer(inc, crmv1alpha1.IncrementFinalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(inc.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(inc, crmv1alpha1.IncrementFinalizer)
	return client.IgnoreNotFound(r.Patch(ctx, inc, patch))
}

func (r *IncrementReconciler) event(inc *crmv1alpha1.Increment, typ, reason, format string, args ...any) {
	r.Recorder.Eventf(inc, nil, typ, reason, "Promote", format, args...)
}

func (r *IncrementReconciler) cond(inc *crmv1alpha1.Increment, typ string, status metav1.ConditionStatus, reason, msg string) {
	setCondition(&inc.Status.Conditions, inc.Generation, typ, status, reason, msg)
}

func (r *IncrementReconciler) reconcileNormal(ctx context.Context, inc *crmv1alpha1.Increment, persist func() error) (ctrl.Result, error) {
	project := &crmv1alpha1.ImplementationProject{}
	if err := r.Get(ctx, types.NamespacedName{Name: inc.Spec.ProjectRef.Name}, project); err != nil {
		if apierrors.IsNotFound(err) {
			inc.Status.Phase = crmv1alpha1.IncrementPending
			r.cond(inc, crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, "ProjectNotFound", "project "+inc.Spec.ProjectRef.Name+" does not exist")
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	promotion.EnsureStages(&inc.Status, project.Spec.Stages)
	r.recordAcceptance(ctx, inc)
	if promotion.Final(inc.Status.Phase) {
		return ctrl.Result{}, nil
	}
	if res, stop, err := r.checkBuild(ctx, inc); stop || err != nil {
		return res, err
	}

	i := promotion.CurrentStage(&inc.Status)
	if i < 0 {
		return ctrl.Result{}, nil
	}
	stage := &inc.Status.Stages[i]
	inc.Status.CurrentStage = stage.Name
	last := i == len(inc.Status.Stages)-1

	if i > 0 && stage.Phase == crmv1alpha1.StagePending {
		// Gates of stages after the first: acceptance, a promotion request,
		// sprint order, one promotion at a time.
		if ok, res, err := r.gate(ctx, project, inc, stage, last); !ok || err != nil {
			return res, err
		}
	}

	env := &crmv1alpha1.Environment{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: inc.Namespace, Name: stage.Name}, env); err != nil {
		if apierrors.IsNotFound(err) {
			r.cond(inc, crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, "EnvironmentNotFound", fmt.Sprintf("stage %s has no Environment %s", stage.Name, stage.Name))
			return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
		}
		return ctrl.Result{}, err
	}
	if i == 0 {
		inc.Status.Phase = crmv1alpha1.IncrementDeploying
	} else {
		inc.Status.Phase = crmv1alpha1.IncrementPromoting
	}
	// Steps that change nothing outside this status follow each other in one
	// reconcile; a step that waits for something outside (a Backup, a Job,
	// the rollout) ends it.
	for {
		if !inc.DeletionTimestamp.IsZero() && !promotion.TouchesData(stage.Phase) {
			// Deleted before its work on data began: nothing more starts.
			return ctrl.Result{}, nil
		}
		if promotion.HeldWhilePaused(stage) {
			if reason, msg, err := r.heldBack(ctx, project, inc, stage, env); err != nil || reason != "" {
				if reason != "" {
					r.cond(inc, crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, reason, msg)
				}
				if reason == "RestoreInProgress" {
					// Another's Restore does not wake this increment.
					return ctrl.Result{RequeueAfter: 15 * time.Second}, err
				}
				return ctrl.Result{}, err // the project's or environment's change brings us back
			}
		}
		from := stage.Phase
		res, err := r.step(ctx, project, inc, i, env, last, persist)
		if err != nil || !res.IsZero() || !promotion.Chains(from, stage.Phase) {
			return res, err
		}
	}
}

// heldBack says why a stage may not start changing its Environment now: a
// paused project, a hibernated environment (nothing runs to migrate or to
// verify: the rollout would fail and roll back), or, before its migration,
// a Restore replacing its data (two writers of one database; both sides
// decide from the cache, so the order holds but for a race within one
// reconcile of each). "" lets it go on.
func (r *IncrementReconciler) heldBack(ctx context.Context, project *crmv1alpha1.ImplementationProject, inc *crmv1alpha1.Increment, stage *crmv1alpha1.StageStatus, env *crmv1alpha1.Environment) (string, string, error) {
	if project.Spec.Paused {
		return "ProjectPaused", fmt.Sprintf("project %s is paused (spec.paused): nothing is migrated or rolled out on %s until it resumes", project.Name, env.Name), nil
	}
	if env.Spec.Hibernate {
		return "EnvironmentHibernated", fmt.Sprintf("environment %s is hibernated: nothing is migrated or rolled out until it wakes (spec.hibernate: false)", env.Name), nil
	}
	if promotion.TouchesData(stage.Phase) {
		// Its migration ran: the rollout must follow. A Restore waits
		// for it (RestoreReconciler.promotionInFlight).
		return "", "", nil
	}
	restores := &crmv1alpha1.RestoreList{}
	if err := r.List(ctx, restores, client.InNamespace(inc.Namespace)); err != nil {
		return "", "", err
	}
	for _, rs := range restores.Items {
		// A Running one replaces the data now; a Pending one waits for
		// its backup, or for this promotion, and starts only after it.
		if rs.Spec.EnvironmentRef.Name == env.Name && rs.Status.Phase == crmv1alpha1.RestoreRunning && rs.Labels[crmv1alpha1.LabelIncrement] != inc.Name {
			return "RestoreInProgress", fmt.Sprintf("Restore %s is replacing the data of %s: the migration and rollout wait for it", rs.Name, env.Name), nil
		}
	}
	return "", "", nil
}

// checkBuild records the build the stages roll out and restarts the
// increment on its first stage when spec.version, spec.image or
// spec.migration changed after that: what reaches production is always the
// build verified on test and accepted there (acceptance freezes it).
func (r *IncrementReconciler) checkBuild(ctx context.Context, inc *crmv1alpha1.Increment) (ctrl.Result, bool, error) {
	build := promotion.BuildOf(inc)
	if inc.Status.Build == nil {
		inc.Status.Build = &build
		return ctrl.Result{}, false, nil
	}
	if !promotion.BuildChanged(inc) {
		return ctrl.Result{}, false, nil
	}
	if !promotion.Restartable(&inc.Status) {
		// Only a spec edit the CRD rule lets through could get here.
		stage := &inc.Status.Stages[promotion.CurrentStage(&inc.Status)]
		return ctrl.Result{}, true, r.fail(inc, stage, "BuildChanged", fmt.Sprintf(
			"the build changed to %s after stage %s began: it was never verified; create a new increment", build.Version, stage.Name))
	}
	old := inc.Status.Build.Version
	first := inc.Status.Stages[0].Name
	promotion.Restart(&inc.Status, build)
	// A migration Job of the old build is not the new build's migration.
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: inc.Namespace, Name: resources.AgentJobName(inc.Name, "migrate-"+first)}}
	if err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, true, err
	}
	r.event(inc, corev1.EventTypeNormal, "Restarted", "the build changed from %s to %s: restarting on %s", old, build.Version, first)
	return ctrl.Result{}, true, nil // the status write brings us back
}

// restoreAfterRollback restores the stage's pre-promotion backup when a
// migration ran and the project asks for it; it returns the Restore's name.
func (r *IncrementReconciler) restoreAfterRollback(ctx context.Context, project *crmv1alpha1.ImplementationProject, inc *crmv1alpha1.Increment, stage *crmv1alpha1.StageStatus, env *crmv1alpha1.Environment) (string, error) {
	if !project.Spec.RestoreDatabaseOnRollback || stage.MigrationJob == "" || stage.Backup == "" {
		return "", nil
	}
	rs := &crmv1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Name: resources.AgentJobName(inc.Name, "rollback-"+stage.Name), Namespace: inc.Namespace},
		Spec: crmv1alpha1.RestoreSpec{
			BackupRef:      crmv1alpha1.LocalObjectReference{Name: stage.Backup},
			EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: stage.Name},
			// The project's policy is the confirmation.
			Confirm: stage.Name,
		},
	}
	if err := r.ownByEnvironment(inc, env, rs); err != nil {
		return "", err
	}
	if err := r.Create(ctx, rs); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	return rs.Name, nil
}

// ownByEnvironment makes the Environment, not the Increment, own work on
// its data (a migration Job, a rollback Restore): deleting the Increment
// never stops it half-way. The label leads events back to the Increment.
func (r *IncrementReconciler) ownByEnvironment(inc *crmv1alpha1.Increment, env *crmv1alpha1.Environment, obj client.Object) error {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[crmv1alpha1.LabelIncrement] = inc.Name
	obj.SetLabels(labels)
	return controllerutil.SetOwnerReference(env, obj, r.Scheme())
}

// recordAcceptance copies the product owner's decision and identity, which
// the API server's admission policies stamped into the annotation
// crm.crmops.io/accepted-by: a value a client wrote into status is replaced.
func (r *IncrementReconciler) recordAcceptance(ctx context.Context, inc *crmv1alpha1.Increment) {
	acc := inc.Spec.Acceptance
	by := inc.Annotations[crmv1alpha1.AnnotationAcceptedBy]
	if acc == nil || by == "" {
		inc.Status.AcceptedBy, inc.Status.AcceptedAt = "", nil
		if acc == nil {
			meta.RemoveStatusCondition(&inc.Status.Conditions, crmv1alpha1.ConditionAccepted)
		}
		return
	}
	if inc.Status.AcceptedBy != by || inc.Status.AcceptedAt == nil {
		now := metav1.NewTime(r.now())
		inc.Status.AcceptedAt = &now
		if acc.Decision == crmv1alpha1.DecisionAccepted {
			audit(ctx, r.Recorder, inc, corev1.EventTypeNormal, "Accepted", "Accept", "accepted by a product owner of the project (status.acceptedBy)")
		} else {
			audit(ctx, r.Recorder, inc, corev1.EventTypeWarning, "Rejected", "Accept", "rejected by a product owner of the project (status.acceptedBy, spec.acceptance.comment)")
		}
	}
	inc.Status.AcceptedBy = by
	if acc.Decision == crmv1alpha1.DecisionAccepted {
		r.cond(inc, crmv1alpha1.ConditionAccepted, metav1.ConditionTrue, "Accepted", "accepted by "+by)
		return
	}
	r.cond(inc, crmv1alpha1.ConditionAccepted, metav1.ConditionFalse, "Rejected", fmt.Sprintf("rejected by %s: %s", by, acc.Comment))
	if !promotion.Final(inc.Status.Phase) && !meta.IsStatusConditionTrue(inc.Status.Conditions, crmv1alpha1.ConditionPromoted) {
		inc.Status.Phase = crmv1alpha1.IncrementRejected
		// Failed too, so that a pipeline waiting for Promoted stops early.
		r.cond(inc, crmv1alpha1.ConditionFailed, metav1.ConditionTrue, "Rejected", fmt.Sprintf("rejected by %s: %s", by, acc.Comment))
	}
}

// gate decides whether stage (index > 0) may start.
func (r *IncrementReconciler) gate(ctx context.Context, project *crmv1alpha1.ImplementationProject, inc *crmv1alpha1.Increment, stage *crmv1alpha1.StageStatus, last bool) (bool, ctrl.Result, error) {
	if !meta.IsStatusConditionTrue(inc.Status.Conditions, crmv1alpha1.ConditionAccepted) {
		inc.Status.Phase = crmv1alpha1.IncrementAwaitingAcceptance
		return false, ctrl.Result{}, nil
	}
	if !inc.Spec.AutoPromote && !inc.Spec.Promote {
		inc.Status.Phase = crmv1alpha1.IncrementAwaitingPromotion
		r.cond(inc, crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, "AwaitingPromotion", "accepted; set spec.promote: true to promote to "+stage.Name)
		return false, ctrl.Result{}, nil
	}
	all := &crmv1alpha1.IncrementList{}
	if err := r.List(ctx, all, client.InNamespace(inc.Namespace)); err != nil {
		return false, ctrl.Result{}, err
	}
	if newer := promotion.NewerAccepted(inc, all.Items, last); newer != "" {
		inc.Status.Phase = crmv1alpha1.IncrementSuperseded
		r.cond(inc, crmv1alpha1.ConditionSuperseded, metav1.ConditionTrue, "Superseded", "a newer accepted increment, "+newer+", replaces this one")
		r.cond(inc, crmv1alpha1.ConditionFailed, metav1.ConditionTrue, "Superseded", "superseded by "+newer+": it will not reach "+stage.Name)
		r.event(inc, corev1.EventTypeNormal, "Superseded", "superseded by %s", newer)
		return false, ctrl.Result{}, nil
	}
	if other := promotion.InFlight(inc, all.Items, stage.Name); other != "" {
		r.cond(inc, crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, "PromotionInProgress", fmt.Sprintf("increment %s is being promoted to %s", other, stage.Name))
		return false, ctrl.Result{RequeueAfter: 15 * time.Second}, nil
	}
	return true, ctrl.Result{}, nil
}

// step performs the next step of stage i.
func (r *IncrementReconciler) step(ctx context.Context, project *crmv1alpha1.ImplementationProject, inc *crmv1alpha1.Increment, i int, env *crmv1alpha1.Environment, last bool, persist func() error) (ctrl.Result, error) {
	stage := &inc.Status.Stages[i]
	now := metav1.NewTime(r.now())
	switch stage.Phase {
	case crmv1alpha1.StagePending:
		stage.StartedAt = &now
		meta.RemoveStatusCondition(&inc.Status.Conditions, crmv1alpha1.ConditionWaiting)
		stage.Phase, stage.Message = crmv1alpha1.StageWaiting, ""
		if !last || i == 0 {
			// A stage that backs up first says so in one event, BackupStarted.
			r.event(inc, corev1.EventTypeNormal, "StageStarted", "started on %s", stage.Name)
		}
		return ctrl.Result{}, nil

	case crmv1alpha1.StageWaiting:
		if w := env.Spec.MaintenanceWindow; w != nil && i > 0 {
			open, until, err := policy.InWindow(w, r.now())
			if err != nil {
				return ctrl.Result{}, r.fail(inc, stage, "InvalidWindow", err.Error())
			}
			if !open {
				msg := fmt.Sprintf("waiting for the maintenance window of %s, which opens at %s", env.Name, until.UTC().Format(time.RFC3339))
				stage.Message = msg
				r.cond(inc, crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, "MaintenanceWindow", msg)
				return ctrl.Result{RequeueAfter: until.Sub(r.now())}, nil
			}
		}
		meta.RemoveStatusCondition(&inc.Status.Conditions, crmv1alpha1.ConditionWaiting)
		if _, err := productUpgrade(project, inc, env); err != nil {
			return ctrl.Result{}, r.fail(inc, stage, "UnsupportedUpgrade", err.Error()+"; "+env.Name+" was not changed")
		}
		if last && i > 0 {
			// The backup is taken now, with the window open, right before
			// the migration and rollout: a rollback restore brings back the
			// data of minutes ago, not of when the promotion was asked for.
			// What production runs now is what a rollback returns to: no
			// other promotion can change it while this one is in flight
			// (promotion.InFlight; production's version changes only
			// through promotions); on record before anything changes it.
			recordPrevious(stage, env)
			stage.Phase, stage.Message = crmv1alpha1.StageBackingUp, "taking a pre-promotion backup of "+env.Name
			return ctrl.Result{}, nil
		}
		r.beginChange(project, inc, stage, env)
		return ctrl.Result{}, nil

	case crmv1alpha1.StageBackingUp:
		return r.backUp(ctx, project, inc, stage, env)

	case crmv1alpha1.StageMigrating:
		return r.migrate(ctx, project, inc, i, env, persist)

	case crmv1alpha1.StageRollingOut:
		if stage.RolloutStartedAt == nil {
			if stage.PreviousVersion == "" {
				// Not recorded when the window opened (a stage without a
				// backup): a restart rolls back to what ran before, never
				// to this increment.
				recordPrevious(stage, env)
			}
			// On record before the Environment changes: a deletion of the
			// increment from now on waits for the rollout's end
			// (TouchesData), and a conflict (the increment changed, or was
			// deleted, meanwhile) ends the reconcile without touching it.
			stage.RolloutStartedAt = &now
			if err := persist(); err != nil {
				return ctrl.Result{}, err
			}
		}
		if err := r.setEnvironmentVersion(ctx, env, promotion.Version(inc), inc.Spec.Image, inc.Name); err != nil {
			return ctrl.Result{}, err
		}
		stage.Phase, stage.Version, stage.Image, stage.Message = crmv1alpha1.StageVerifying, promotion.Version(inc), inc.Spec.Image, "verifying the rollout"
		stage.Build = promotion.BuildOf(inc).Fingerprint
		r.cond(inc, crmv1alpha1.ConditionDeployed, metav1.ConditionTrue, "RolledOut", fmt.Sprintf("%s rolled out to %s", promotion.Version(inc), env.Name))
		r.event(inc, corev1.EventTypeNormal, "RolledOut", "rolled out to %s", env.Name)
		return ctrl.Result{}, nil

	case crmv1alpha1.StageVerifying:
		return r.verify(ctx, project, inc, i, env, last)

	case crmv1alpha1.StageRestoring:
		return r.awaitRollbackRestore(ctx, inc, stage, env)
	}
	return ctrl.Result{}, nil
}

// beginChange moves a stage to its migration (the product's upgrade when
// the version changes, the increment's migration), or to its rollout when
// there is neither.
func (r *IncrementReconciler) beginChange(project *crmv1alpha1.ImplementationProject, inc *crmv1alpha1.Increment, stage *crmv1alpha1.StageStatus, env *crmv1alpha1.Environment) {
	upgrade, _ := productUpgrade(project, inc, env)
	switch {
	case upgrade != nil && inc.Spec.Migration != nil:
		stage.Phase, stage.Message = crmv1alpha1.StageMigrating, "running the product's upgrade, then the migration"
	case upgrade != nil:
		stage.Phase, stage.Message = crmv1alpha1.StageMigrating, "running the product's upgrade"
	case inc.Spec.Migration != nil:
		stage.Phase, stage.Message = crmv1alpha1.StageMigrating, "running the migration"
	default:
		stage.Phase, stage.Message = crmv1alpha1.StageRollingOut, "rolling out"
	}
}

// recordPrevious notes what the stage's Environment runs, for a rollback.
func recordPrevious(stage *crmv1alpha1.StageStatus, env *crmv1alpha1.Environment) {
	stage.PreviousVersion, stage.PreviousImage = env.Spec.Version, env.Spec.Image
	if stage.PreviousVersion == "" {
		stage.PreviousVersion = env.Status.Version
	}
	stage.PreviousIncrement = env.Annotations[crmv1alpha1.AnnotationIncrement]
}

func (r *IncrementReconciler) backUp(ctx context.Context, project *crmv1alpha1.ImplementationProject, inc *crmv1alpha1.Increment, stage *crmv1alpha1.StageStatus, env *crmv1alpha1.Environment) (ctrl.Result, error) {
	name := resources.AgentJobName(inc.Name, "pre-"+env.Name)
	if project.Spec.Backup == nil {
		return ctrl.Result{}, r.fail(inc, stage, "NoBackupTarget", "production is never changed without a backup: project "+project.Name+" has no spec.backup")
	}
	if stage.Backup == "" {
		b := &crmv1alpha1.Backup{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: inc.Namespace, Labels: map[string]string{
				crmv1alpha1.LabelEnvironment: env.Name, crmv1alpha1.LabelBackupReason: string(crmv1alpha1.BackupPrePromotion)}},
			Spec: crmv1alpha1.BackupSpec{EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: env.Name}, Reason: crmv1alpha1.BackupPrePromotion, Increment: inc.Name},
		}
		// Created at most once: the name is fixed and recorded before anything else happens.
		if err := r.Create(ctx, b); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, err
		}
		stage.Backup = name
		r.cond(inc, crmv1alpha1.ConditionBackedUp, metav1.ConditionFalse, "BackupRunning", "waiting for Backup "+name)
		r.event(inc, corev1.EventTypeNormal, "BackupStarted", "started on %s: pre-promotion Backup %s", env.Name, name)
		return ctrl.Result{}, nil
	}
	b := &crmv1alpha1.Backup{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: inc.Namespace, Name: stage.Backup}, b); err != nil {
		if apierrors.IsNotFound(err) {
			return gone(ctx, r.APIReader, &crmv1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: inc.Namespace, Name: stage.Backup}}, func() error {
				return r.fail(inc, stage, "BackupMissing", "pre-promotion Backup "+stage.Backup+" was deleted")
			})
		}
		return ctrl.Result{}, err
	}
	switch b.Status.Phase {
	case crmv1alpha1.BackupCompleted:
		r.cond(inc, crmv1alpha1.ConditionBackedUp, metav1.ConditionTrue, "BackupCompleted", fmt.Sprintf("Backup %s of %s completed (%s)", b.Name, env.Name, b.Status.Size))
		r.beginChange(project, inc, stage, env)
		return ctrl.Result{}, nil
	case crmv1alpha1.BackupFailed:
		r.cond(inc, crmv1alpha1.ConditionBackedUp, metav1.ConditionFalse, "BackupFailed", b.Status.Error)
		return ctrl.Result{}, r.fail(inc, stage, "BackupFailed", "pre-promotion Backup "+b.Name+" failed: "+b.Status.Error+"; "+env.Name+" was not changed")
	}
	r.cond(inc, crmv1alpha1.ConditionBackedUp, metav1.ConditionFalse, "BackupRunning", "waiting for Backup "+b.Name)
	return ctrl.Result{}, nil // the Backup watch brings us back
}

func (r *IncrementReconciler) migrate(ctx context.Context, project *crmv1alpha1.ImplementationProject, inc *crmv1alpha1.Increment, i int, env *crmv1alpha1.Environment, persist func() error) (ctrl.Result, error) {
	stage := &inc.Status.Stages[i]
	name := resources.AgentJobName(inc.Name, "migrate-"+env.Name)
	build := promotion.BuildOf(inc)
	job := &batchv1.Job{}
	err := r.Get(ctx, types.NamespacedName{Namespace: inc.Namespace, Name: name}, job)
	if err == nil && job.Annotations[crmv1alpha1.AnnotationBuild] != "" && job.Annotations[crmv1alpha1.AnnotationBuild] != build.Fingerprint {
		// The Job of a build this increment had before a restart: it is
		// being deleted (checkBuild) and never counts for this build.
		if job.DeletionTimestamp.IsZero() {
			if err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
				return ctrl.Result{}, err
			}
		}
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	if apierrors.IsNotFound(err) {
		if stage.MigrationJob != "" {
			return gone(ctx, r.APIReader, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: inc.Namespace, Name: name}}, func() error {
				return r.fail(inc, stage, "MigrationJobMissing", "migration Job "+name+" disappeared; it is not run again")
			})
		}
		profile, err := crm.For(project.Spec.Product)
		if err != nil {
			return ctrl.Result{}, r.fail(inc, stage, "InvalidProduct", err.Error())
		}
		in := &resources.EnvironmentInput{Project: project, Env: env.DeepCopy(), Profile: profile, Version: promotion.Version(inc), Tolerations: r.Tolerations}
		in.Env.Spec.Image = inc.Spec.Image
		if ext := env.Spec.Database.External; ext != nil {
			if in.External, err = readExternalDatabase(ctx, r.APIReader, env.Namespace, ext.SecretName, profile.Engine); err != nil {
				return ctrl.Result{}, r.fail(inc, stage, "ExternalDatabaseInvalid", err.Error())
			}
		}
		timeout := 30 * time.Minute
		var args []string
		if m := inc.Spec.Migration; m != nil {
			args = m.Command
			if d, err := policy.ParseDuration(m.Timeout); err == nil && d > 0 {
				timeout = d
			}
		}
		upgrade, err := productUpgrade(project, inc, env)
		if err != nil {
			return ctrl.Result{}, r.fail(inc, stage, "UnsupportedUpgrade", err.Error())
		}
		job := resources.MigrationJob(in, name, upgrade, args, int64(timeout.Seconds()))
		job.Annotations = map[string]string{crmv1alpha1.AnnotationBuild: build.Fingerprint}
		if err := r.ownByEnvironment(inc, env, job); err != nil {
			return ctrl.Result{}, err
		}
		// Migrating is on record before the Job exists: a deletion of the
		// increment from now on waits for the migration's end
		// (TouchesData); a conflict ends the reconcile before it starts.
		if err := persist(); err != nil {
			return ctrl.Result{}, err
		}
		// Recorded with the Job's creation: a restart finds it and never runs it twice.
		if err := r.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, err
		}
		stage.MigrationJob = name
		r.event(inc, corev1.EventTypeNormal, "MigrationStarted", "migration Job %s on %s", name, env.Name)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	stage.MigrationJob = name
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet: // see jobOutcome
			stage.Phase, stage.Message = crmv1alpha1.StageRollingOut, "migration done; rolling out"
			r.event(inc, corev1.EventTypeNormal, "MigrationCompleted", "migration on %s completed", env.Name)
			return ctrl.Result{}, nil
		case batchv1.JobFailed:
			msg := fmt.Sprintf("migration Job %s failed on %s: %s", name, env.Name, c.Message)
			if i == 0 {
				return ctrl.Result{}, r.fail(inc, stage, "MigrationFailed", msg)
			}
			// Nothing rolled out yet, but the schema may be half-migrated.
			return r.rollBack(ctx, project, inc, stage, env, "MigrationFailed", msg, false)
		}
	}
	return ctrl.Result{}, nil
}

func (r *IncrementReconciler) verify(ctx context.Context, project *crmv1alpha1.ImplementationProject, inc *crmv1alpha1.Increment, i int, env *crmv1alpha1.Environment, last bool) (ctrl.Result, error) {
	stage := &inc.Status.Stages[i]
	if promotion.Healthy(env, inc) {
		now := metav1.NewTime(r.now())
		stage.Phase, stage.FinishedAt, stage.Message = crmv1alpha1.StageSucceeded, &now, "verified"
		r.cond(inc, crmv1alpha1.ConditionVerified, metav1.ConditionTrue, "Verified", fmt.Sprintf("%s is Ready on %s", promotion.Version(inc), env.Name))
		if !last {
			r.event(inc, corev1.EventTypeNormal, "Verified", "verified on %s", env.Name)
		}
		switch {
		case last:
			inc.Status.Phase = crmv1alpha1.IncrementPromoted
			r.cond(inc, crmv1alpha1.ConditionPromoted, metav1.ConditionTrue, "Promoted", fmt.Sprintf("%s runs on %s", promotion.Version(inc), env.Name))
			// One event says both (Verified and Promoted).
			audit(ctx, r.Recorder, inc, corev1.EventTypeNormal, "Promoted", "Promote", "promoted %s to %s: verified Ready", promotion.Version(inc), env.Name)
			recordPromotion(inc, stage, true, resultPromoted, now.Time)
		case meta.IsStatusConditionTrue(inc.Status.Conditions, crmv1alpha1.ConditionAccepted):
			inc.Status.Phase = crmv1alpha1.IncrementAwaitingPromotion
		default:
			inc.Status.Phase = crmv1alpha1.IncrementAwaitingAcceptance
		}
		return ctrl.Result{}, nil
	}
	deadline := stage.RolloutStartedAt.Add(promotion.VerifyTimeout(inc))
	if r.now().Before(deadline) {
		return ctrl.Result{RequeueAfter: deadline.Sub(r.now())}, nil
	}
	reason := fmt.Sprintf("%s did not become Ready on %s within %s", promotion.Version(inc), env.Name, promotion.VerifyTimeout(inc))
	if i == 0 {
		return ctrl.Result{}, r.fail(inc, stage, "VerificationFailed", reason)
	}
	r.cond(inc, crmv1alpha1.ConditionVerified, metav1.ConditionFalse, "VerificationFailed", reason)
	return r.rollBack(ctx, project, inc, stage, env, "VerificationFailed", reason, true)
}

// rollBack undoes a failed promotion on a stage after the first: the
// Environment goes back to what ran before (when the rollout changed it),
// and the pre-promotion backup is restored when a migration ran and the
// project asks for it. RolledBack is recorded only once that Restore
// completed (awaitRollbackRestore).
func (r *IncrementReconciler) rollBack(ctx context.Context, project *crmv1alpha1.ImplementationProject, inc *crmv1alpha1.Increment, stage *crmv1alpha1.StageStatus, env *crmv1alpha1.Environment, reason, msg string, rolledOut bool) (ctrl.Result, error) {
	if rolledOut {
		if err := r.setEnvironmentVersion(ctx, env, stage.PreviousVersion, stage.PreviousImage, stage.PreviousIncrement); err != nil {
			return ctrl.Result{}, err
		}
	}
	restore, err := r.restoreAfterRollback(ctx, project, inc, stage, env)
	if err != nil {
		return ctrl.Result{}, err
	}
	if restore != "" {
		stage.Phase, stage.Restore = crmv1alpha1.StageRestoring, restore
		stage.Message = fmt.Sprintf("%s; restoring the database of %s from Backup %s (Restore %s)", msg, env.Name, stage.Backup, restore)
		r.cond(inc, crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, "RestoringDatabase", stage.Message)
		r.event(inc, corev1.EventTypeWarning, reason, "%s", stage.Message)
		return ctrl.Result{}, nil
	}
	if !rolledOut {
		return ctrl.Result{}, r.fail(inc, stage, reason, fmt.Sprintf(
			"%s; %s still runs %s, its database may be partly migrated: Backup %s holds it as it was (spec.restoreDatabaseOnRollback restores it automatically)",
			msg, env.Name, stage.PreviousVersion, stage.Backup))
	}
	r.rolledBack(ctx, inc, stage, env, reason, msg)
	return ctrl.Result{}, nil
}

// awaitRollbackRestore waits for the rollback's Restore; a failed one fails
// the increment and says how production is left.
func (r *IncrementReconciler) awaitRollbackRestore(ctx context.Context, inc *crmv1alpha1.Increment, stage *crmv1alpha1.StageStatus, env *crmv1alpha1.Environment) (ctrl.Result, error) {
	reason := "VerificationFailed"
	if stage.RolloutStartedAt == nil {
		reason = "MigrationFailed"
	}
	rs := &crmv1alpha1.Restore{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: inc.Namespace, Name: stage.Restore}, rs); err != nil {
		if apierrors.IsNotFound(err) {
			return gone(ctx, r.APIReader, &crmv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: inc.Namespace, Name: stage.Restore}}, func() error {
				return r.fail(inc, stage, "RollbackRestoreMissing", fmt.Sprintf("%s; Restore %s was deleted before it completed: restore Backup %s into %s by hand", stage.Message, stage.Restore, stage.Backup, env.Name))
			})
		}
		return ctrl.Result{}, err
	}
	switch rs.Status.Phase {
	case crmv1alpha1.RestoreCompleted:
		meta.RemoveStatusCondition(&inc.Status.Conditions, crmv1alpha1.ConditionWaiting)
		r.rolledBack(ctx, inc, stage, env, reason, stage.Message+"; restored")
	case crmv1alpha1.RestoreFailed:
		meta.RemoveStatusCondition(&inc.Status.Conditions, crmv1alpha1.ConditionWaiting)
		return ctrl.Result{}, r.fail(inc, stage, "RollbackRestoreFailed", fmt.Sprintf(
			"%s; Restore %s failed: %s; %s runs %s on the data the promotion left: restore Backup %s by hand", stage.Message, rs.Name, rs.Status.Message, env.Name, stage.PreviousVersion, stage.Backup))
	}
	return ctrl.Result{}, nil // the Restore's watch brings us back
}

// rolledBack records a completed rollback: the previous version runs again
// (and the data is restored, when a Restore ran).
func (r *IncrementReconciler) rolledBack(ctx context.Context, inc *crmv1alpha1.Increment, stage *crmv1alpha1.StageStatus, env *crmv1alpha1.Environment, reason, msg string) {
	now := metav1.NewTime(r.now())
	stage.Phase, stage.FinishedAt, stage.Message = crmv1alpha1.StageRolledBack, &now, msg+"; rolled back to "+stage.PreviousVersion
	inc.Status.Phase = crmv1alpha1.IncrementRolledBack
	r.cond(inc, crmv1alpha1.ConditionRolledBack, metav1.ConditionTrue, "RolledBack", fmt.Sprintf("%s runs %s again", env.Name, stage.PreviousVersion))
	r.cond(inc, crmv1alpha1.ConditionFailed, metav1.ConditionTrue, reason, msg)
	audit(ctx, r.Recorder, inc, corev1.EventTypeWarning, "RolledBack", "Promote", "%s; rolled back %s to %s", msg, env.Name, stage.PreviousVersion)
	recordPromotion(inc, stage, stage.Name == inc.Status.Stages[len(inc.Status.Stages)-1].Name, resultRolledBack, now.Time)
}

// setEnvironmentVersion points the environment at a version (and image),
// recording the increment it runs. Idempotent.
func (r *IncrementReconciler) setEnvironmentVersion(ctx context.Context, env *crmv1alpha1.Environment, version, image, increment string) error {
	if env.Spec.Version == version && env.Spec.Image == image && env.Annotations[crmv1alpha1.AnnotationIncrement] == increment && env.Annotations[crmv1alpha1.AnnotationSchemaVersion] == version {
		return nil
	}
	patch := client.MergeFrom(env.DeepCopy())
	env.Spec.Version, env.Spec.Image = version, image
	if env.Annotations == nil {
		env.Annotations = map[string]string{}
	}
	env.Annotations[crmv1alpha1.AnnotationIncrement] = increment
	// The stage's migration slot ran the product's upgrade to this version
	// (or none was needed): the Environment does not run it a second time.
	env.Annotations[crmv1alpha1.AnnotationSchemaVersion] = version
	return r.Patch(ctx, env, patch)
}

// productUpgrade is the product's upgrade step a stage runs in its
// migration slot: nil when the version does not change or the product has
// no such step; an error names the versions when the product cannot go
// from one to the other in one step.
func productUpgrade(project *crmv1alpha1.ImplementationProject, inc *crmv1alpha1.Increment, env *crmv1alpha1.Environment) (*crm.Run, error) {
	profile, err := crm.For(project.Spec.Product)
	if err != nil {
		return nil, err
	}
	from, to := resources.SchemaVersion(env), promotion.Version(inc)
	if from == "" || from == to {
		return nil, nil
	}
	if err := profile.CheckUpgrade(from, to); err != nil {
		return nil, err
	}
	return profile.Upgrade, nil
}

func (r *IncrementReconciler) fail(inc *crmv1alpha1.Increment, stage *crmv1alpha1.StageStatus, reason, msg string) error {
	now := metav1.NewTime(r.now())
	stage.Phase, stage.FinishedAt, stage.Message = crmv1alpha1.StageFailed, &now, msg
	inc.Status.Phase = crmv1alpha1.IncrementFailed
	r.cond(inc, crmv1alpha1.ConditionFailed, metav1.ConditionTrue, reason, msg)
	r.event(inc, corev1.EventTypeWarning, reason, "%s", msg)
	recordPromotion(inc, stage, stage.Name == inc.Status.Stages[len(inc.Status.Stages)-1].Name, resultFailed, now.Time)
	return nil
}

// SetupWithManager registers the reconciler. It follows the increment's
// Backups and Jobs, and the environments it rolls out to.
func (r *IncrementReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.Increment{}).
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(incrementOfWork)).
		Watches(&crmv1alpha1.Restore{}, handler.EnqueueRequestsFromMapFunc(incrementOfWork)).
		Watches(&crmv1alpha1.Backup{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			b := o.(*crmv1alpha1.Backup)
			if b.Spec.Increment == "" {
				return nil
			}
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.Increment}}}
		})).
		Watches(&crmv1alpha1.Environment{}, handler.EnqueueRequestsFromMapFunc(r.incrementsOfEnvironment)).
		// A project that resumes (spec.paused) lets its increments go on.
		Watches(&crmv1alpha1.ImplementationProject{}, handler.EnqueueRequestsFromMapFunc(r.incrementsOfProject),
			builder.WithPredicates(pausedChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}

// incrementOfWork maps a migration Job or rollback Restore to the Increment
// that started it (label crm.crmops.io/increment; owner, for Jobs created
// before the label).
func incrementOfWork(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[crmv1alpha1.LabelIncrement]
	if ref := metav1.GetControllerOf(obj); name == "" && ref != nil && ref.Kind == "Increment" {
		name = ref.Name
	}
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

// incrementsOfProject wakes the increments in progress in the project's
// namespace (of the project's name).
func (r *IncrementReconciler) incrementsOfProject(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.inProgress(ctx, obj.GetName())
}

// incrementsOfEnvironment wakes the increments in progress in its namespace.
func (r *IncrementReconciler) incrementsOfEnvironment(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.inProgress(ctx, obj.GetNamespace())
}

func (r *IncrementReconciler) inProgress(ctx context.Context, ns string) []reconcile.Request {
	list := &crmv1alpha1.IncrementList{}
	if err := r.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, inc := range list.Items {
		if !promotion.Final(inc.Status.Phase) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&inc)})
		}
	}
	return reqs
}
