package policy

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestDueBackup(t *testing.T) {
	daily, err := Schedule("30 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		last, now  time.Time
		due        bool
		slot, next time.Time
	}{
		{"not yet", t0, t0.Add(time.Hour), false, time.Time{}, time.Date(2026, 11, 26, 2, 30, 0, 0, time.UTC)},
		{"one slot passed", t0, time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC), true,
			time.Date(2026, 11, 26, 2, 30, 0, 0, time.UTC), time.Date(2026, 11, 27, 2, 30, 0, 0, time.UTC)},
		{"an outage collapses missed slots into the latest", t0, time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), true,
			time.Date(2026, 11, 30, 2, 30, 0, 0, time.UTC), time.Date(2026, 12, 1, 2, 30, 0, 0, time.UTC)},
		{"exactly at the slot", t0, time.Date(2026, 11, 26, 2, 30, 0, 0, time.UTC), true,
			time.Date(2026, 11, 26, 2, 30, 0, 0, time.UTC), time.Date(2026, 11, 27, 2, 30, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slot, next, due := DueBackup(daily, tt.last, tt.now)
			if due != tt.due || !slot.Equal(tt.slot) || !next.Equal(tt.next) {
				t.Errorf("DueBackup = %v %v %v, want %v %v %v", slot, next, due, tt.slot, tt.next, tt.due)
			}
		})
	}
	if _, err := Schedule("every day"); err == nil {
		t.Error("an invalid schedule parsed")
	}
}

func backup(name string, phase crmv1alpha1.BackupPhase, age time.Duration) crmv1alpha1.Backup {
	b := crmv1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: crmv1alpha1.BackupStatus{Phase: phase}}
	if phase == crmv1alpha1.BackupCompleted {
		b.Status.CompletedAt = &metav1.Time{Time: t0.Add(-age)}
	}
	return b
}

func TestExpired(t *testing.T) {
	backups := []crmv1alpha1.Backup{
		backup("d1", crmv1alpha1.BackupCompleted, 24*time.Hour),
		backup("d5", crmv1alpha1.BackupCompleted, 5*24*time.Hour),
		backup("d3", crmv1alpha1.BackupCompleted, 3*24*time.Hour),
		backup("d2", crmv1alpha1.BackupCompleted, 2*24*time.Hour),
		backup("running", crmv1alpha1.BackupRunning, 0),
		backup("failed", crmv1alpha1.BackupFailed, 0),
	}
	tests := []struct {
		name     string
		keepLast int
		maxAge   time.Duration
		inUse    map[string]bool
		want     []string
	}{
		{"no limits", 0, 0, nil, nil},
		{"keep the newest two", 2, 0, nil, []string{"d3", "d5"}},
		{"older than four days", 0, 4 * 24 * time.Hour, nil, []string{"d5"}},
		{"both", 3, 48*time.Hour + time.Minute, nil, []string{"d3", "d5"}},
		{"a backup a restore reads stays", 1, 0, map[string]bool{"d3": true}, []string{"d2", "d5"}},
	}
	// Completed in the same second: the later name is the newer.
	same := []crmv1alpha1.Backup{backup("b-1", crmv1alpha1.BackupCompleted, time.Hour), backup("b-3", crmv1alpha1.BackupCompleted, time.Hour), backup("b-2", crmv1alpha1.BackupCompleted, time.Hour)}
	if got := Expired(same, 2, 0, t0, nil); !reflect.DeepEqual(got, []string{"b-1"}) {
		t.Errorf("ties: Expired = %v, want [b-1]", got)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Expired(backups, tt.keepLast, tt.maxAge, t0, tt.inUse); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Expired = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEffectiveRetention(t *testing.T) {
	keep := int32(7)
	override := int32(3)
	p := &crmv1alpha1.ImplementationProject{Spec: crmv1alpha1.ImplementationProjectSpec{
		Backup: &crmv1alpha1.BackupPolicy{Retention: crmv1alpha1.BackupRetention{KeepLast: &keep, MaxAge: "2160h"}},
		GDPR:   &crmv1alpha1.GDPRPolicy{MaxBackupAge: "720h"},
	}}
	env := &crmv1alpha1.Environment{}
	k, age, err := EffectiveRetention(p, env)
	if err != nil || k != 7 || age != 720*time.Hour {
		t.Errorf("project retention under a GDPR cap = %d %v %v, want 7 720h", k, age, err)
	}
	env.Spec.Backup = &crmv1alpha1.EnvironmentBackup{Retention: &crmv1alpha1.BackupRetention{KeepLast: &override, MaxAge: "48h"}, Schedule: "@hourly"}
	k, age, _ = EffectiveRetention(p, env)
	if k != 3 || age != 48*time.Hour {
		t.Errorf("environment override = %d %v, want 3 48h", k, age)
	}
	if EffectiveSchedule(p, env) != "@hourly" {
		t.Error("environment schedule does not override")
	}
}

func TestParseDurationReadsDays(t *testing.T) {
	for _, tc := range []struct {
		in   crmv1alpha1.Duration
		want time.Duration
		err  bool
	}{
		{"", 0, false},
		{"30d", 720 * time.Hour, false},
		{"1d", 24 * time.Hour, false},
		{"720h", 720 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"d", 0, true},
		{"1.5d", 0, true},
		{"-3d", 0, true},
		{"30 days", 0, true},
	} {
		got, err := ParseDuration(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}
