package promotion

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

func increment(name string, sprint int32, phase crmv1alpha1.IncrementPhase, conds ...string) crmv1alpha1.Increment {
	inc := crmv1alpha1.Increment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: crmv1alpha1.IncrementSpec{Sprint: sprint}}
	inc.Status.Phase = phase
	for _, c := range conds {
		inc.Status.Conditions = append(inc.Status.Conditions, metav1.Condition{Type: c, Status: metav1.ConditionTrue})
	}
	return inc
}

func TestNewerAccepted(t *testing.T) {
	me := increment("s3", 3, crmv1alpha1.IncrementAwaitingPromotion, crmv1alpha1.ConditionAccepted)
	tests := []struct {
		name   string
		others []crmv1alpha1.Increment
		last   bool
		want   string
	}{
		{"alone", nil, true, ""},
		{"older accepted does not matter", []crmv1alpha1.Increment{increment("s2", 2, crmv1alpha1.IncrementAwaitingPromotion, crmv1alpha1.ConditionAccepted)}, true, ""},
		{"newer not yet accepted", []crmv1alpha1.Increment{increment("s4", 4, crmv1alpha1.IncrementAwaitingAcceptance)}, true, ""},
		{"newer accepted supersedes", []crmv1alpha1.Increment{increment("s4", 4, crmv1alpha1.IncrementPromoting, crmv1alpha1.ConditionAccepted)}, true, "s4"},
		{"newer already in production", []crmv1alpha1.Increment{increment("s5", 5, crmv1alpha1.IncrementPromoted, crmv1alpha1.ConditionAccepted, crmv1alpha1.ConditionPromoted)}, true, "s5"},
		{"newer rejected does not", []crmv1alpha1.Increment{increment("s4", 4, crmv1alpha1.IncrementRolledBack, crmv1alpha1.ConditionAccepted)}, true, ""},
		{"only production is ordered", []crmv1alpha1.Increment{increment("s4", 4, crmv1alpha1.IncrementPromoting, crmv1alpha1.ConditionAccepted)}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewerAccepted(&me, append(tt.others, me), tt.last); got != tt.want {
				t.Errorf("NewerAccepted = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInFlight(t *testing.T) {
	me := increment("a", 1, crmv1alpha1.IncrementPromoting)
	busy := increment("b", 2, crmv1alpha1.IncrementPromoting)
	busy.Status.Stages = []crmv1alpha1.StageStatus{{Name: "test", Phase: crmv1alpha1.StageSucceeded}, {Name: "production", Phase: crmv1alpha1.StageMigrating}}
	done := increment("c", 3, crmv1alpha1.IncrementFailed)
	done.Status.Stages = []crmv1alpha1.StageStatus{{Name: "production", Phase: crmv1alpha1.StageMigrating}}
	all := []crmv1alpha1.Increment{me, busy, done}
	if got := InFlight(&me, all, "production"); got != "b" {
		t.Errorf("InFlight(production) = %q, want b", got)
	}
	if got := InFlight(&me, all, "test"); got != "" {
		t.Errorf("InFlight(test) = %q, want none", got)
	}
}

func TestEnsureStagesKeepsProgress(t *testing.T) {
	st := &crmv1alpha1.IncrementStatus{Stages: []crmv1alpha1.StageStatus{{Name: "test", Phase: crmv1alpha1.StageSucceeded}}}
	EnsureStages(st, []string{"test", "staging", "production"})
	if len(st.Stages) != 3 || st.Stages[0].Phase != crmv1alpha1.StageSucceeded || st.Stages[2].Phase != crmv1alpha1.StagePending {
		t.Fatalf("stages %+v", st.Stages)
	}
	if CurrentStage(st) != 1 {
		t.Errorf("current stage %d, want 1", CurrentStage(st))
	}
}

func TestVersion(t *testing.T) {
	for image, want := range map[string]string{
		"registry.example.com/crm/app:2.1.0":          "2.1.0",
		"registry.example.com:5000/crm/app@sha256:ab": "sha256-ab",
	} {
		inc := &crmv1alpha1.Increment{Spec: crmv1alpha1.IncrementSpec{Image: image}}
		if got := Version(inc); got != want {
			t.Errorf("Version(%s) = %s, want %s", image, got, want)
		}
	}
}

func TestChains(t *testing.T) {
	for _, tc := range []struct {
		from, to crmv1alpha1.StagePhase
		want     bool
	}{
		{crmv1alpha1.StagePending, crmv1alpha1.StageBackingUp, true},
		{crmv1alpha1.StagePending, crmv1alpha1.StageWaiting, true},
		{crmv1alpha1.StageBackingUp, crmv1alpha1.StageBackingUp, false}, // the Backup was just created: wait for it
		{crmv1alpha1.StageBackingUp, crmv1alpha1.StageWaiting, true},
		{crmv1alpha1.StageBackingUp, crmv1alpha1.StageFailed, false},
		{crmv1alpha1.StageWaiting, crmv1alpha1.StageRollingOut, true},
		{crmv1alpha1.StageWaiting, crmv1alpha1.StageMigrating, true},
		{crmv1alpha1.StageWaiting, crmv1alpha1.StageWaiting, false},      // the window is closed
		{crmv1alpha1.StageRollingOut, crmv1alpha1.StageVerifying, false}, // wait for the rollout
		{crmv1alpha1.StageMigrating, crmv1alpha1.StageMigrating, false},  // the Job was just created: wait for it
		{crmv1alpha1.StageMigrating, crmv1alpha1.StageRollingOut, true},
		{crmv1alpha1.StageMigrating, crmv1alpha1.StageFailed, false},
		{crmv1alpha1.StageVerifying, crmv1alpha1.StageSucceeded, false},
	} {
		if got := Chains(tc.from, tc.to); got != tc.want {
			t.Errorf("Chains(%s, %s) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}
