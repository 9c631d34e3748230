package policy

import (
	"fmt"
	"time"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// InWindow reports whether now lies in a maintenance window, and otherwise
// when the next window opens. A window opens at each schedule time and lasts
// its duration.
func InWindow(w *crmv1alpha1.MaintenanceWindow, now time.Time) (bool, time.Time, error) {
	sched, err := Schedule(w.Schedule)
	if err != nil {
		return false, time.Time{}, err
	}
	length, err := ParseDuration(w.Duration)
	if err != nil {
		return false, time.Time{}, err
	}
	// The latest opening at or before now: search back over one window length.
	start := sched.Next(now.Add(-length - time.Second))
	if !start.After(now) && now.Before(start.Add(length)) {
		return true, start, nil
	}
	next := sched.Next(now)
	if next.IsZero() {
		return false, next, fmt.Errorf("maintenance window %q does not open again", w.Schedule)
	}
	return false, next, nil
}
