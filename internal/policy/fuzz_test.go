package policy

import (
	"testing"
	"time"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// clampTime maps any int64 to an instant between 1970 and about 2514, where
// schedules are meaningful.
func clampTime(unix int64) time.Time {
	if unix < 0 {
		unix = -(unix + 1)
	}
	return time.Unix(unix%(1<<34), 0).UTC()
}

// FuzzInWindow: any schedule and duration either is refused or yields an
// answer consistent with now: inside a window that opened at or before now,
// or a next opening after now.
func FuzzInWindow(f *testing.F) {
	f.Add("4 15 * * *", "1h", int64(1764000000))
	f.Add("@daily", "30m", int64(0))
	f.Add("*/5 * * * 1-5", "5m", int64(1000000000))
	f.Add("0 0 30 2 *", "1h", int64(1764000000)) // never fires
	f.Add("0 0 29 2 *", "24h", int64(1764000000))
	f.Fuzz(func(t *testing.T, schedule, duration string, unix int64) {
		now := clampTime(unix)
		w := &crmv1alpha1.MaintenanceWindow{Schedule: crmv1alpha1.CronSchedule(schedule), Duration: crmv1alpha1.Duration(duration)}
		open, at, err := InWindow(w, now)
		if err != nil {
			return
		}
		length, _ := ParseDuration(w.Duration)
		switch {
		case open && (at.After(now) || !now.Before(at.Add(length))):
			t.Fatalf("open at %s, but the window %s+%s does not hold it", now, at, length)
		case !open && !at.After(now):
			t.Fatalf("closed at %s, next opening %s is not after now", now, at)
		}
	})
}

// FuzzDueBackup: a schedule either is refused or yields a due slot in
// (last, now] and a next slot after now, and always returns.
func FuzzDueBackup(f *testing.F) {
	f.Add("30 2 * * *", int64(1764000000), int64(3600*24*3))
	f.Add("@hourly", int64(0), int64(3600*5))
	f.Add("0 0 30 2 *", int64(1764000000), int64(3600)) // never fires
	f.Add("*/1 * * * *", int64(1764000000), int64(0))
	f.Fuzz(func(t *testing.T, schedule string, lastUnix, gap int64) {
		sched, err := Schedule(crmv1alpha1.CronSchedule(schedule))
		if err != nil {
			return
		}
		last := clampTime(lastUnix)
		if gap < 0 {
			gap = -(gap + 1)
		}
		now := last.Add(time.Duration(gap%(3600*24*400)) * time.Second)
		slot, next, ok := DueBackup(sched, last, now)
		if ok && (!slot.After(last) || slot.After(now)) {
			t.Fatalf("due slot %s outside (%s, %s]", slot, last, now)
		}
		if !next.After(now) {
			t.Fatalf("next slot %s not after now %s", next, now)
		}
	})
}
