package increment

import (
	"context"
	"fmt"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/promotion"
)

// run is one reconcile of an increment: what it read, and how it puts its
// status on record mid-step.
type run struct {
	*Reconciler
	inc *crmv1alpha1.Increment
	// persist writes the status set so far, for a step that must be on
	// record before it acts outside the increment; the reconcile goes on.
	// A conflict (the increment changed meanwhile) ends it before it acts.
	persist kube.Persist

	project *crmv1alpha1.ImplementationProject
	env     *crmv1alpha1.Environment
	// stage is the current stage, at index i; last: production's.
	stage *crmv1alpha1.StageStatus
	i     int
	last  bool
}

// outcome is what a step did: recorded its move and lets the next step
// follow (next), or ended the reconcile to wait for something outside (a
// watch event brings it back, or the requeue).
type outcome struct {
	wait    bool
	requeue time.Duration
}

var (
	next = outcome{}
	// done ends the reconcile: a watch event brings it back, if anything is
	// left to do.
	done = outcome{wait: true}
)

// waitFor ends the reconcile and comes back after d.
func waitFor(d time.Duration) outcome { return outcome{wait: true, requeue: d} }

func (o outcome) result() ctrl.Result { return ctrl.Result{RequeueAfter: o.requeue} }

// advance reads like the promotion: find the project and the stage,
// open its gate, find its Environment, then take the stage's steps (step,
// in steps.go) until one waits.
func (x *run) advance(ctx context.Context) (ctrl.Result, error) {
	for _, prepare := range []func(context.Context) (outcome, error){x.loadProject, x.checkBuild, x.selectStage, x.gate, x.loadEnvironment} {
		if o, err := prepare(ctx); err != nil || o.wait {
			return o.result(), err
		}
	}
	for {
		if !x.inc.DeletionTimestamp.IsZero() && !promotion.TouchesData(x.stage.Phase) {
			// Deleted before its work on data began: nothing more starts.
			return ctrl.Result{}, nil
		}
		if promotion.HeldWhilePaused(x.stage) {
			if o, err := x.hold(ctx); err != nil || o.wait {
				return o.result(), err
			}
		}
		from := x.stage.Phase
		o, err := x.step(ctx)
		if err != nil || o.wait || !promotion.Chains(from, x.stage.Phase) {
			return o.result(), err
		}
	}
}

// loadProject reads the increment's project, and records its stages and
// the product owner's decision; a final increment takes no step.
func (x *run) loadProject(ctx context.Context) (outcome, error) {
	x.project = &crmv1alpha1.ImplementationProject{}
	if err := x.Get(ctx, types.NamespacedName{Name: x.inc.Spec.ProjectRef.Name}, x.project); err != nil {
		if apierrors.IsNotFound(err) {
			x.inc.Status.Phase = crmv1alpha1.IncrementPending
			x.cond(crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, "ProjectNotFound", "project "+x.inc.Spec.ProjectRef.Name+" does not exist")
			return done, nil
		}
		return done, err
	}
	promotion.EnsureStages(&x.inc.Status, x.project.Spec.Stages)
	if err := x.recordAcceptance(ctx); err != nil {
		return done, err // the authorizer did not answer: looked at again with backoff
	}
	if promotion.Final(x.inc.Status.Phase) {
		return done, nil
	}
	return next, nil
}

// checkBuild records the build the stages roll out and restarts the
// increment on its first stage when spec.version, spec.image or
// spec.migration changed after that: what reaches production is always the
// build verified on test and accepted there (acceptance freezes it).
func (x *run) checkBuild(ctx context.Context) (outcome, error) {
	inc := x.inc
	build := promotion.BuildOf(inc)
	if inc.Status.Build == nil {
		inc.Status.Build = &build
		return next, nil
	}
	if !promotion.BuildChanged(inc) {
		return next, nil
	}
	if !promotion.Restartable(&inc.Status) {
		// Only a spec edit the CRD rule lets through could get here.
		x.stage = &inc.Status.Stages[promotion.CurrentStage(&inc.Status)]
		x.fail("BuildChanged", fmt.Sprintf("the build changed to %s after stage %s began: it was never verified; create a new increment", build.Version, x.stage.Name))
		return done, nil
	}
	old := inc.Status.Build.Version
	first := inc.Status.Stages[0].Name
	promotion.Restart(&inc.Status, build)
	// A migration Job of the old build is not the new build's migration.
	if err := x.deleteMigrationJob(ctx, first); err != nil {
		return done, err
	}
	x.event(corev1.EventTypeNormal, "Restarted", "the build changed from %s to %s: restarting on %s", old, build.Version, first)
	return done, nil // the status write brings us back
}

// selectStage finds the stage the increment is on.
func (x *run) selectStage(context.Context) (outcome, error) {
	x.i = promotion.CurrentStage(&x.inc.Status)
	if x.i < 0 {
		return done, nil
	}
	x.stage = &x.inc.Status.Stages[x.i]
	x.inc.Status.CurrentStage = x.stage.Name
	x.last = x.i == len(x.inc.Status.Stages)-1
	return next, nil
}

// gate decides whether a stage after the first may start: the product
// owner accepted, a promotion was asked for, no newer accepted increment
// supersedes this one, and no other increment is being promoted there.
func (x *run) gate(ctx context.Context) (outcome, error) {
	inc, stage := x.inc, x.stage
	if x.i == 0 || stage.Phase != crmv1alpha1.StagePending {
		return next, nil
	}
	if !meta.IsStatusConditionTrue(inc.Status.Conditions, crmv1alpha1.ConditionAccepted) {
		inc.Status.Phase = crmv1alpha1.IncrementAwaitingAcceptance
		return done, nil
	}
	if !inc.Spec.AutoPromote && !inc.Spec.Promote {
		inc.Status.Phase = crmv1alpha1.IncrementAwaitingPromotion
		x.cond(crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, "AwaitingPromotion", "accepted; set spec.promote: true to promote to "+stage.Name)
		return done, nil
	}
	all := &crmv1alpha1.IncrementList{}
	if err := x.List(ctx, all, client.InNamespace(inc.Namespace)); err != nil {
		return done, err
	}
	if newer := promotion.NewerAccepted(inc, all.Items, x.last); newer != "" {
		inc.Status.Phase = crmv1alpha1.IncrementSuperseded
		x.cond(crmv1alpha1.ConditionSuperseded, metav1.ConditionTrue, "Superseded", "a newer accepted increment, "+newer+", replaces this one")
		x.cond(crmv1alpha1.ConditionFailed, metav1.ConditionTrue, "Superseded", "superseded by "+newer+": it will not reach "+stage.Name)
		x.event(corev1.EventTypeNormal, "Superseded", "superseded by %s", newer)
		return done, nil
	}
	if other := promotion.InFlight(inc, all.Items, stage.Name); other != "" {
		x.cond(crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, "PromotionInProgress", fmt.Sprintf("increment %s is being promoted to %s", other, stage.Name))
		return waitFor(15 * time.Second), nil
	}
	return next, nil
}

// loadEnvironment reads the stage's Environment.
func (x *run) loadEnvironment(ctx context.Context) (outcome, error) {
	x.env = &crmv1alpha1.Environment{}
	if err := x.Get(ctx, types.NamespacedName{Namespace: x.inc.Namespace, Name: x.stage.Name}, x.env); err != nil {
		if apierrors.IsNotFound(err) {
			x.cond(crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, "EnvironmentNotFound", fmt.Sprintf("stage %s has no Environment %s", x.stage.Name, x.stage.Name))
			return waitFor(30 * time.Second), nil
		}
		return done, err
	}
	if x.i == 0 {
		x.inc.Status.Phase = crmv1alpha1.IncrementDeploying
	} else {
		x.inc.Status.Phase = crmv1alpha1.IncrementPromoting
	}
	return next, nil
}

// hold stops a stage from changing its Environment now: a paused project,
// a hibernated environment (nothing runs to migrate or to verify: the
// rollout would fail and roll back), or, before its migration, a Restore
// replacing its data (two writers of one database; both sides decide from
// the cache, so the order holds but for a race within one reconcile of
// each).
func (x *run) hold(ctx context.Context) (outcome, error) {
	inc, env := x.inc, x.env
	why := func(reason, msg string) outcome {
		x.cond(crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, reason, msg)
		return done // the project's or environment's change brings us back
	}
	if x.project.Spec.Paused {
		return why("ProjectPaused", fmt.Sprintf("project %s is paused (spec.paused): nothing is migrated or rolled out on %s until it resumes", x.project.Name, env.Name)), nil
	}
	if env.Spec.Hibernate {
		return why("EnvironmentHibernated", fmt.Sprintf("environment %s is hibernated: nothing is migrated or rolled out until it wakes (spec.hibernate: false)", env.Name)), nil
	}
	if promotion.TouchesData(x.stage.Phase) {
		// Its migration ran: the rollout must follow. A Restore waits
		// for it (the restore controller's promotionInFlight).
		return next, nil
	}
	restores := &crmv1alpha1.RestoreList{}
	if err := x.List(ctx, restores, client.InNamespace(inc.Namespace)); err != nil {
		return done, err
	}
	for _, rs := range restores.Items {
		// A Running one replaces the data now; a Pending one waits for
		// its backup, or for this promotion, and starts only after it.
		if rs.Spec.EnvironmentRef.Name == env.Name && rs.Status.Phase == crmv1alpha1.RestoreRunning && rs.Labels[crmv1alpha1.LabelIncrement] != inc.Name {
			why("RestoreInProgress", fmt.Sprintf("Restore %s is replacing the data of %s: the migration and rollout wait for it", rs.Name, env.Name))
			return waitFor(15 * time.Second), nil // another's Restore does not wake this increment
		}
	}
	return next, nil
}

// recordAcceptance copies the product owner's decision and identity, which
// the API server's admission policies stamped into the annotation
// crm.crmops.io/accepted-by: a value a client wrote into status is replaced.
func (x *run) recordAcceptance(ctx context.Context) error {
	inc := x.inc
	acc := inc.Spec.Acceptance
	by := inc.Annotations[crmv1alpha1.AnnotationAcceptedBy]
	if acc == nil || by == "" {
		inc.Status.AcceptedBy, inc.Status.AcceptedAt = "", nil
		if acc == nil {
			meta.RemoveStatusCondition(&inc.Status.Conditions, crmv1alpha1.ConditionAccepted)
		}
		return nil
	}
	if inc.Status.AcceptedBy != by || inc.Status.AcceptedAt == nil {
		// The admission policies let only a product owner accept and stamp
		// who did; the operator asks the authorizer itself as well, so that
		// a cluster without the policies (admissionPolicies.enabled: false)
		// does not take an annotation a client wrote for a decision.
		allowed, err := x.mayAccept(ctx, by)
		if err != nil {
			return fmt.Errorf("checking the acceptor %s: %w", by, err)
		}
		if !allowed {
			msg := fmt.Sprintf("spec.acceptance was set, but %s is not allowed to accept increments of project %s (update increments/acceptance): the decision is ignored", by, inc.Spec.ProjectRef.Name)
			if c := meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionAccepted); c == nil || c.Message != msg {
				kube.Audit(ctx, x.Recorder, inc, corev1.EventTypeWarning, "AcceptorNotAuthorized", "Accept", "%s", msg)
			}
			inc.Status.AcceptedBy, inc.Status.AcceptedAt = "", nil
			x.cond(crmv1alpha1.ConditionAccepted, metav1.ConditionFalse, "AcceptorNotAuthorized", msg)
			return nil
		}
		now := metav1.NewTime(x.Clock.Now())
		inc.Status.AcceptedAt = &now
		if acc.Decision == crmv1alpha1.DecisionAccepted {
			kube.Audit(ctx, x.Recorder, inc, corev1.EventTypeNormal, "Accepted", "Accept", "accepted by a product owner of the project (status.acceptedBy)")
		} else {
			kube.Audit(ctx, x.Recorder, inc, corev1.EventTypeWarning, "Rejected", "Accept", "rejected by a product owner of the project (status.acceptedBy, spec.acceptance.comment)")
		}
	}
	inc.Status.AcceptedBy = by
	if acc.Decision == crmv1alpha1.DecisionAccepted {
		x.cond(crmv1alpha1.ConditionAccepted, metav1.ConditionTrue, "Accepted", "accepted by "+by)
		return nil
	}
	x.cond(crmv1alpha1.ConditionAccepted, metav1.ConditionFalse, "Rejected", fmt.Sprintf("rejected by %s: %s", by, acc.Comment))
	if !promotion.Final(inc.Status.Phase) && !meta.IsStatusConditionTrue(inc.Status.Conditions, crmv1alpha1.ConditionPromoted) {
		inc.Status.Phase = crmv1alpha1.IncrementRejected
		// Failed too, so that a pipeline waiting for Promoted stops early.
		x.cond(crmv1alpha1.ConditionFailed, metav1.ConditionTrue, "Rejected", fmt.Sprintf("rejected by %s: %s", by, acc.Comment))
	}
	return nil
}

// mayAccept asks the authorizer whether the user the admission policy
// recorded (with the groups it recorded beside) may update
// increments/acceptance of this increment.
func (x *run) mayAccept(ctx context.Context, user string) (bool, error) {
	var groups []string
	if g := x.inc.Annotations[crmv1alpha1.AnnotationAcceptedByGroups]; g != "" {
		groups = strings.Split(g, "\n")
	}
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Group: crmv1alpha1.GroupVersion.Group, Resource: "increments", Subresource: "acceptance",
			Namespace: x.inc.Namespace, Name: x.inc.Name, Verb: "update",
		},
	}}
	if err := x.Create(ctx, review); err != nil {
		return false, err
	}
	return review.Status.Allowed, nil
}

func (x *run) event(typ, reason, format string, args ...any) {
	x.Recorder.Eventf(x.inc, nil, typ, reason, "Promote", format, args...)
}

func (x *run) cond(typ string, status metav1.ConditionStatus, reason, msg string) {
	kube.SetCondition(&x.inc.Status.Conditions, x.inc.Generation, typ, status, reason, msg)
}

// fail ends the current stage, and the increment, as Failed.
func (x *run) fail(reason, msg string) {
	now := metav1.NewTime(x.Clock.Now())
	x.stage.Phase, x.stage.FinishedAt, x.stage.Message = crmv1alpha1.StageFailed, &now, msg
	x.inc.Status.Phase = crmv1alpha1.IncrementFailed
	x.cond(crmv1alpha1.ConditionFailed, metav1.ConditionTrue, reason, msg)
	x.event(corev1.EventTypeWarning, reason, "%s", msg)
	recordPromotion(x.inc, x.stage, x.stage.Name == x.inc.Status.Stages[len(x.inc.Status.Stages)-1].Name, resultFailed, now.Time)
}
