// Package promotion holds the increment state machine's decisions: pure
// functions of an Increment's status, its siblings and its environments.
package promotion

import (
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/policy"
)

// DefaultVerifyTimeout bounds the health check after a rollout.
const DefaultVerifyTimeout = 10 * time.Minute

// EnsureStages lists every stage of the project in status, in order, keeping
// the progress already recorded.
func EnsureStages(st *crmv1alpha1.IncrementStatus, stages []string) {
	if len(stages) == 0 {
		stages = []string{"test", "production"}
	}
	have := map[string]crmv1alpha1.StageStatus{}
	for _, s := range st.Stages {
		have[s.Name] = s
	}
	out := make([]crmv1alpha1.StageStatus, 0, len(stages))
	for _, name := range stages {
		s, ok := have[name]
		if !ok {
			s = crmv1alpha1.StageStatus{Name: name, Phase: crmv1alpha1.StagePending}
		}
		out = append(out, s)
	}
	st.Stages = out
}

// Final reports whether the increment can go no further.
func Final(p crmv1alpha1.IncrementPhase) bool {
	switch p {
	case crmv1alpha1.IncrementPromoted, crmv1alpha1.IncrementRejected, crmv1alpha1.IncrementFailed,
		crmv1alpha1.IncrementRolledBack, crmv1alpha1.IncrementSuperseded:
		return true
	}
	return false
}

// CurrentStage is the index of the first stage not yet succeeded, or -1.
func CurrentStage(st *crmv1alpha1.IncrementStatus) int {
	for i, s := range st.Stages {
		if s.Phase != crmv1alpha1.StageSucceeded {
			return i
		}
	}
	return -1
}

// Active reports whether a stage's promotion is under way.
func Active(p crmv1alpha1.StagePhase) bool {
	switch p {
	case crmv1alpha1.StageBackingUp, crmv1alpha1.StageWaiting, crmv1alpha1.StageMigrating,
		crmv1alpha1.StageRollingOut, crmv1alpha1.StageVerifying:
		return true
	}
	return false
}

// InFlight names another increment being promoted to env, or "".
func InFlight(inc *crmv1alpha1.Increment, all []crmv1alpha1.Increment, env string) string {
	for _, o := range all {
		if o.Name == inc.Name || Final(o.Status.Phase) {
			continue
		}
		for _, s := range o.Status.Stages {
			if s.Name == env && Active(s.Phase) {
				return o.Name
			}
		}
	}
	return ""
}

// NewerAccepted names a newer increment (higher sprint) that is accepted or
// already promoted, which supersedes inc on its way to production; "" if
// none. It matters only for the last stage: increments reach production in
// sprint order and an older one never replaces a newer one.
func NewerAccepted(inc *crmv1alpha1.Increment, all []crmv1alpha1.Increment, last bool) string {
	if !last {
		return ""
	}
	for _, o := range all {
		if o.Name == inc.Name || o.Spec.Sprint <= inc.Spec.Sprint {
			continue
		}
		if meta.IsStatusConditionTrue(o.Status.Conditions, crmv1alpha1.ConditionPromoted) ||
			(meta.IsStatusConditionTrue(o.Status.Conditions, crmv1alpha1.ConditionAccepted) && !Final(o.Status.Phase)) {
			return o.Name
		}
	}
	return ""
}

// Version is what the increment rolls out, as an Environment's spec.version:
// its version, or its image's tag, or its image's digest as "sha256-<hex>"
// (a version may not contain ':').
func Version(inc *crmv1alpha1.Increment) string {
	if inc.Spec.Version != "" {
		return inc.Spec.Version
	}
	img := inc.Spec.Image
	if at := strings.LastIndex(img, "@"); at >= 0 {
		return strings.ReplaceAll(img[at+1:], ":", "-")
	}
	for i := len(img) - 1; i >= 0; i-- {
		switch img[i] {
		case '@', ':':
			return img[i+1:]
		case '/':
			return img
		}
	}
	return img
}

// VerifyTimeout is spec.verifyTimeout or the default.
func VerifyTimeout(inc *crmv1alpha1.Increment) time.Duration {
	if d, err := policy.ParseDuration(inc.Spec.VerifyTimeout); err == nil && d > 0 {
		return d
	}
	return DefaultVerifyTimeout
}

// Healthy reports whether env runs the increment and is Ready at its
// current generation.
func Healthy(env *crmv1alpha1.Environment, inc *crmv1alpha1.Increment) bool {
	ready := meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionReady)
	return ready != nil && ready.Status == "True" && ready.ObservedGeneration == env.Generation &&
		env.Status.ObservedGeneration == env.Generation && env.Status.Version == Version(inc) &&
		env.Spec.Image == inc.Spec.Image
}

// Chains reports whether a stage that moved from one phase to another may
// take its next step in the same reconcile: the move recorded nothing that
// must be written before the next step acts (starting a stage, a completed
// backup or migration, an open maintenance window; the rollout writes its
// own record before it changes the Environment). A step that stays in its
// phase (it waits), or rolls out, fails or finishes, ends the reconcile.
func Chains(from, to crmv1alpha1.StagePhase) bool {
	if from == to {
		return false
	}
	switch from {
	case crmv1alpha1.StagePending, crmv1alpha1.StageWaiting:
		return true
	case crmv1alpha1.StageBackingUp:
		return to == crmv1alpha1.StageWaiting
	case crmv1alpha1.StageMigrating:
		return to == crmv1alpha1.StageRollingOut
	}
	return false
}
