// Package promotion holds the increment state machine's decisions: pure
// functions of an Increment's status, its siblings and its environments.
package promotion

import (
	"crypto/sha256"
	"encoding/hex"
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
		crmv1alpha1.StageRollingOut, crmv1alpha1.StageVerifying, crmv1alpha1.StageRestoring:
		return true
	}
	return false
}

// TouchesData reports whether a stage in phase p has begun changing its
// Environment's data or version: from the migration on, a stage runs to
// its end (verified, or rolled back with its restore completed) even when
// its Increment is deleted.
func TouchesData(p crmv1alpha1.StagePhase) bool {
	switch p {
	case crmv1alpha1.StageMigrating, crmv1alpha1.StageRollingOut, crmv1alpha1.StageVerifying, crmv1alpha1.StageRestoring:
		return true
	}
	return false
}

// HoldsDeletion reports whether a deleted increment must still be carried
// on: its current stage touches data (TouchesData).
func HoldsDeletion(st *crmv1alpha1.IncrementStatus) bool {
	i := CurrentStage(st)
	return i >= 0 && !Final(st.Phase) && TouchesData(st.Stages[i].Phase)
}

// HeldWhilePaused reports whether the next step of a stage would start a
// change outside the increment (a migration, a rollout) that a paused
// project holds back. Backups go on; a rollout already applied is still
// verified and, if it fails, rolled back.
func HeldWhilePaused(s *crmv1alpha1.StageStatus) bool {
	switch s.Phase {
	case crmv1alpha1.StagePending, crmv1alpha1.StageWaiting:
		return true
	case crmv1alpha1.StageMigrating:
		return s.MigrationJob == ""
	case crmv1alpha1.StageRollingOut:
		return s.RolloutStartedAt == nil
	}
	return false
}

// BuildOf is what the increment's spec rolls out.
func BuildOf(inc *crmv1alpha1.Increment) crmv1alpha1.Build {
	h := sha256.New()
	h.Write([]byte(Version(inc) + "\x00" + inc.Spec.Image + "\x00"))
	if m := inc.Spec.Migration; m != nil {
		for _, arg := range m.Command {
			h.Write([]byte(arg + "\x00"))
		}
		h.Write([]byte("\x00" + string(m.Timeout)))
	}
	return crmv1alpha1.Build{Version: Version(inc), Image: inc.Spec.Image, Fingerprint: "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]}
}

// BuildChanged reports whether the build on record in status differs from
// what the spec now rolls out.
func BuildChanged(inc *crmv1alpha1.Increment) bool {
	return inc.Status.Build != nil && inc.Status.Build.Fingerprint != BuildOf(inc).Fingerprint
}

// Restart puts every stage back to Pending for a new build, keeping the
// acceptance-independent record (restarts) and dropping what the old build
// achieved: it was never verified as the build now in the spec.
func Restart(st *crmv1alpha1.IncrementStatus, build crmv1alpha1.Build) {
	for i := range st.Stages {
		st.Stages[i] = crmv1alpha1.StageStatus{Name: st.Stages[i].Name, Phase: crmv1alpha1.StagePending}
	}
	for _, c := range []string{crmv1alpha1.ConditionDeployed, crmv1alpha1.ConditionVerified, crmv1alpha1.ConditionWaiting} {
		meta.RemoveStatusCondition(&st.Conditions, c)
	}
	st.Build = &build
	st.Restarts++
	st.Phase = crmv1alpha1.IncrementPending
}

// Restartable reports whether only the first stage has seen work: later
// stages start only after acceptance, which freezes the build (CRD rule).
func Restartable(st *crmv1alpha1.IncrementStatus) bool {
	for i, s := range st.Stages {
		if i > 0 && s.Phase != crmv1alpha1.StagePending {
			return false
		}
	}
	return true
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

// Healthy reports whether env runs the increment's build and is Ready at
// its current generation: the Environment's own status (written only once
// its workloads rolled out at that generation) says it runs this version
// for this increment, not just that it was asked to.
func Healthy(env *crmv1alpha1.Environment, inc *crmv1alpha1.Increment) bool {
	ready := meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionReady)
	return ready != nil && ready.Status == "True" && ready.ObservedGeneration == env.Generation &&
		env.Status.ObservedGeneration == env.Generation && env.Status.Version == Version(inc) &&
		env.Spec.Image == inc.Spec.Image && env.Status.CurrentIncrement == inc.Name
}

// Chains reports whether a stage that moved from one phase to another may
// take its next step in the same reconcile: the move recorded nothing that
// must be written before the next step acts (starting a stage, an open
// maintenance window, a completed backup or migration; the rollout writes its
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
		return to == crmv1alpha1.StageMigrating || to == crmv1alpha1.StageRollingOut
	case crmv1alpha1.StageMigrating:
		return to == crmv1alpha1.StageRollingOut
	}
	return false
}
