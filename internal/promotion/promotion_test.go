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
		{crmv1alpha1.StagePending, crmv1alpha1.StageWaiting, true},
		{crmv1alpha1.StageWaiting, crmv1alpha1.StageBackingUp, true},    // the window is open: back up now
		{crmv1alpha1.StageBackingUp, crmv1alpha1.StageBackingUp, false}, // the Backup was just created: wait for it
		{crmv1alpha1.StageBackingUp, crmv1alpha1.StageMigrating, true},
		{crmv1alpha1.StageBackingUp, crmv1alpha1.StageRollingOut, true},
		{crmv1alpha1.StageBackingUp, crmv1alpha1.StageFailed, false},
		{crmv1alpha1.StageWaiting, crmv1alpha1.StageRollingOut, true},
		{crmv1alpha1.StageWaiting, crmv1alpha1.StageMigrating, true},
		{crmv1alpha1.StageWaiting, crmv1alpha1.StageWaiting, false},      // the window is closed
		{crmv1alpha1.StageRollingOut, crmv1alpha1.StageVerifying, false}, // wait for the rollout
		{crmv1alpha1.StageMigrating, crmv1alpha1.StageMigrating, false},  // the Job was just created: wait for it
		{crmv1alpha1.StageMigrating, crmv1alpha1.StageRollingOut, true},
		{crmv1alpha1.StageMigrating, crmv1alpha1.StageFailed, false},
		{crmv1alpha1.StageVerifying, crmv1alpha1.StageSucceeded, false},
		{crmv1alpha1.StageVerifying, crmv1alpha1.StageRestoring, false}, // the Restore was just created: wait for it
		{crmv1alpha1.StageMigrating, crmv1alpha1.StageRestoring, false},
	} {
		if got := Chains(tc.from, tc.to); got != tc.want {
			t.Errorf("Chains(%s, %s) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestPhasesThatTouchData(t *testing.T) {
	tests := []struct {
		phase          crmv1alpha1.StagePhase
		touches        bool
		migrationJob   string
		rolloutStarted bool
		heldIfPaused   bool
	}{
		{phase: crmv1alpha1.StagePending, heldIfPaused: true},
		{phase: crmv1alpha1.StageWaiting, heldIfPaused: true},
		{phase: crmv1alpha1.StageBackingUp},
		{phase: crmv1alpha1.StageMigrating, touches: true, heldIfPaused: true},
		{phase: crmv1alpha1.StageMigrating, touches: true, migrationJob: "j"},
		{phase: crmv1alpha1.StageRollingOut, touches: true, heldIfPaused: true},
		{phase: crmv1alpha1.StageRollingOut, touches: true, rolloutStarted: true},
		{phase: crmv1alpha1.StageVerifying, touches: true},
		{phase: crmv1alpha1.StageRestoring, touches: true},
		{phase: crmv1alpha1.StageSucceeded},
		{phase: crmv1alpha1.StageRolledBack},
		{phase: crmv1alpha1.StageFailed},
	}
	for _, tt := range tests {
		s := crmv1alpha1.StageStatus{Phase: tt.phase, MigrationJob: tt.migrationJob}
		if tt.rolloutStarted {
			s.RolloutStartedAt = &metav1.Time{}
		}
		if got := TouchesData(tt.phase); got != tt.touches {
			t.Errorf("TouchesData(%s) = %v, want %v", tt.phase, got, tt.touches)
		}
		if got := HeldWhilePaused(&s); got != tt.heldIfPaused {
			t.Errorf("HeldWhilePaused(%s, job %q, rollout started %v) = %v, want %v", tt.phase, tt.migrationJob, tt.rolloutStarted, got, tt.heldIfPaused)
		}
	}
}

func TestHoldsDeletion(t *testing.T) {
	st := func(phase crmv1alpha1.IncrementPhase, stages ...crmv1alpha1.StagePhase) *crmv1alpha1.IncrementStatus {
		s := &crmv1alpha1.IncrementStatus{Phase: phase}
		for i, p := range stages {
			s.Stages = append(s.Stages, crmv1alpha1.StageStatus{Name: []string{"test", "production"}[i], Phase: p})
		}
		return s
	}
	tests := []struct {
		name string
		st   *crmv1alpha1.IncrementStatus
		want bool
	}{
		{"awaiting acceptance", st(crmv1alpha1.IncrementAwaitingAcceptance, crmv1alpha1.StageSucceeded, crmv1alpha1.StagePending), false},
		{"migrating test", st(crmv1alpha1.IncrementDeploying, crmv1alpha1.StageMigrating, crmv1alpha1.StagePending), true},
		{"backing up production", st(crmv1alpha1.IncrementPromoting, crmv1alpha1.StageSucceeded, crmv1alpha1.StageBackingUp), false},
		{"migrating production", st(crmv1alpha1.IncrementPromoting, crmv1alpha1.StageSucceeded, crmv1alpha1.StageMigrating), true},
		{"restoring production", st(crmv1alpha1.IncrementPromoting, crmv1alpha1.StageSucceeded, crmv1alpha1.StageRestoring), true},
		{"rolled back", st(crmv1alpha1.IncrementRolledBack, crmv1alpha1.StageSucceeded, crmv1alpha1.StageRolledBack), false},
		{"promoted", st(crmv1alpha1.IncrementPromoted, crmv1alpha1.StageSucceeded, crmv1alpha1.StageSucceeded), false},
	}
	for _, tt := range tests {
		if got := HoldsDeletion(tt.st); got != tt.want {
			t.Errorf("%s: HoldsDeletion = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBuildChangeRestartsOnTheFirstStage(t *testing.T) {
	inc := &crmv1alpha1.Increment{Spec: crmv1alpha1.IncrementSpec{Version: "9.1.6"}}
	b := BuildOf(inc)
	inc.Status.Build = &b
	if BuildChanged(inc) {
		t.Fatal("an unchanged spec counts as a new build")
	}
	for name, change := range map[string]func(*crmv1alpha1.Increment){
		"version": func(i *crmv1alpha1.Increment) { i.Spec.Version = "9.1.7" },
		"image":   func(i *crmv1alpha1.Increment) { i.Spec.Version, i.Spec.Image = "", "registry.example/crm:9.1.6" },
		"migration": func(i *crmv1alpha1.Increment) {
			i.Spec.Migration = &crmv1alpha1.Migration{Command: []string{"rebuild"}}
		},
		"migration command": func(i *crmv1alpha1.Increment) {
			i.Spec.Migration = &crmv1alpha1.Migration{Command: []string{"re", "build"}}
		},
	} {
		edited := inc.DeepCopy()
		edited.Spec.Migration = &crmv1alpha1.Migration{Command: []string{"rebuild"}}
		base := BuildOf(edited)
		edited.Status.Build = &base
		if name == "migration" {
			edited = inc.DeepCopy()
		}
		change(edited)
		if !BuildChanged(edited) {
			t.Errorf("%s changed: BuildChanged = false", name)
		}
	}

	st := &crmv1alpha1.IncrementStatus{Phase: crmv1alpha1.IncrementAwaitingAcceptance, Stages: []crmv1alpha1.StageStatus{
		{Name: "test", Phase: crmv1alpha1.StageSucceeded, Version: "9.1.6", MigrationJob: "j", Build: b.Fingerprint},
		{Name: "production", Phase: crmv1alpha1.StagePending},
	}, Conditions: []metav1.Condition{{Type: crmv1alpha1.ConditionVerified, Status: metav1.ConditionTrue}, {Type: crmv1alpha1.ConditionDeployed, Status: metav1.ConditionTrue}}}
	if !Restartable(st) {
		t.Fatal("an increment verified only on test is not restartable")
	}
	next := crmv1alpha1.Build{Version: "9.1.7", Fingerprint: "sha256:other"}
	Restart(st, next)
	if st.Stages[0].Phase != crmv1alpha1.StagePending || st.Stages[0].MigrationJob != "" || st.Stages[0].Build != "" {
		t.Errorf("first stage after a restart: %+v", st.Stages[0])
	}
	if len(st.Conditions) != 0 || st.Restarts != 1 || st.Build.Version != "9.1.7" || st.Phase != crmv1alpha1.IncrementPending {
		t.Errorf("status after a restart: conditions %v, restarts %d, build %+v, phase %s", st.Conditions, st.Restarts, st.Build, st.Phase)
	}
	st.Stages[1].Phase = crmv1alpha1.StageBackingUp
	if Restartable(st) {
		t.Error("an increment on its way to production is restartable")
	}
}

func TestHealthyMeansTheBuildRuns(t *testing.T) {
	inc := &crmv1alpha1.Increment{ObjectMeta: metav1.ObjectMeta{Name: "sprint-7"}, Spec: crmv1alpha1.IncrementSpec{Version: "9.1.6"}}
	env := func(change func(*crmv1alpha1.Environment)) *crmv1alpha1.Environment {
		e := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Generation: 4}}
		e.Spec.Version = "9.1.6"
		e.Status = crmv1alpha1.EnvironmentStatus{ObservedGeneration: 4, Version: "9.1.6", CurrentIncrement: "sprint-7",
			Conditions: []metav1.Condition{{Type: crmv1alpha1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: 4}}}
		if change != nil {
			change(e)
		}
		return e
	}
	tests := []struct {
		name string
		env  *crmv1alpha1.Environment
		want bool
	}{
		{"ready on the build", env(nil), true},
		{"ready on the previous version", env(func(e *crmv1alpha1.Environment) { e.Status.Version = "9.1.5" }), false},
		{"ready for another increment", env(func(e *crmv1alpha1.Environment) { e.Status.CurrentIncrement = "sprint-6" }), false},
		{"ready at an older generation", env(func(e *crmv1alpha1.Environment) { e.Generation = 5 }), false},
		{"not ready", env(func(e *crmv1alpha1.Environment) { e.Status.Conditions[0].Status = metav1.ConditionFalse }), false},
		{"another image", env(func(e *crmv1alpha1.Environment) { e.Spec.Image = "registry.example/crm:9.1.6" }), false},
	}
	for _, tt := range tests {
		if got := Healthy(tt.env, inc); got != tt.want {
			t.Errorf("%s: Healthy = %v, want %v", tt.name, got, tt.want)
		}
	}
}
