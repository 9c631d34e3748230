package increment

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/promotion"
)

// rollOut points the Environment at the build, on record first:
// RollingOut -> Verifying.
func (x *run) rollOut(ctx context.Context) (outcome, error) {
	inc, stage, env := x.inc, x.stage, x.env
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
		now := metav1.NewTime(x.Clock.Now())
		stage.RolloutStartedAt = &now
		if err := x.persist(ctx); err != nil {
			return done, err
		}
	}
	if err := x.setEnvironmentVersion(ctx, promotion.Version(inc), inc.Spec.Image, inc.Name); err != nil {
		return done, err
	}
	stage.Phase, stage.Version, stage.Image, stage.Message = crmv1alpha1.StageVerifying, promotion.Version(inc), inc.Spec.Image, "verifying the rollout"
	stage.Build = promotion.BuildOf(inc).Fingerprint
	x.cond(crmv1alpha1.ConditionDeployed, metav1.ConditionTrue, "RolledOut", fmt.Sprintf("%s rolled out to %s", promotion.Version(inc), env.Name))
	x.event(corev1.EventTypeNormal, "RolledOut", "rolled out to %s", env.Name)
	return done, nil
}

// setEnvironmentVersion points the stage's Environment at a version (and
// image), recording the increment it runs. Idempotent.
func (x *run) setEnvironmentVersion(ctx context.Context, version, image, increment string) error {
	env := x.env
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
	return x.Patch(ctx, env, patch)
}

// verify waits until the Environment is Ready on the build, up to the
// deadline: Verifying -> Succeeded (Promoted on production), or Failed /
// rolled back.
func (x *run) verify(ctx context.Context) (outcome, error) {
	inc, stage, env := x.inc, x.stage, x.env
	if promotion.Healthy(env, inc) {
		now := metav1.NewTime(x.Clock.Now())
		stage.Phase, stage.FinishedAt, stage.Message = crmv1alpha1.StageSucceeded, &now, "verified"
		x.cond(crmv1alpha1.ConditionVerified, metav1.ConditionTrue, "Verified", fmt.Sprintf("%s is Ready on %s", promotion.Version(inc), env.Name))
		if !x.last {
			x.event(corev1.EventTypeNormal, "Verified", "verified on %s", env.Name)
		}
		switch {
		case x.last:
			inc.Status.Phase = crmv1alpha1.IncrementPromoted
			x.cond(crmv1alpha1.ConditionPromoted, metav1.ConditionTrue, "Promoted", fmt.Sprintf("%s runs on %s", promotion.Version(inc), env.Name))
			// One event says both (Verified and Promoted).
			kube.Audit(ctx, x.Recorder, inc, corev1.EventTypeNormal, "Promoted", "Promote", "promoted %s to %s: verified Ready", promotion.Version(inc), env.Name)
			recordPromotion(inc, stage, true, resultPromoted, now.Time)
		case meta.IsStatusConditionTrue(inc.Status.Conditions, crmv1alpha1.ConditionAccepted):
			inc.Status.Phase = crmv1alpha1.IncrementAwaitingPromotion
		default:
			inc.Status.Phase = crmv1alpha1.IncrementAwaitingAcceptance
		}
		return done, nil
	}
	deadline := stage.RolloutStartedAt.Add(promotion.VerifyTimeout(inc))
	if now := x.Clock.Now(); now.Before(deadline) {
		return waitFor(deadline.Sub(now)), nil
	}
	reason := fmt.Sprintf("%s did not become Ready on %s within %s", promotion.Version(inc), env.Name, promotion.VerifyTimeout(inc))
	if x.i == 0 {
		x.fail("VerificationFailed", reason)
		return done, nil
	}
	x.cond(crmv1alpha1.ConditionVerified, metav1.ConditionFalse, "VerificationFailed", reason)
	return x.rollBack(ctx, "VerificationFailed", reason, true)
}
