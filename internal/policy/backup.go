// Package policy evaluates the projects' backup and data-protection policies:
// pure functions from objects and a clock to decisions.
package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// ParseDuration reads an API Duration ("30d", "720h"); empty is zero.
func ParseDuration(d crmv1alpha1.Duration) (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(string(d), "d"); ok {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("duration %q: want whole days such as 30d", d)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(string(d))
}

// Schedule parses a CronSchedule (five fields or a descriptor, UTC).
func Schedule(s crmv1alpha1.CronSchedule) (cron.Schedule, error) {
	sched, err := cron.ParseStandard(string(s))
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", s, err)
	}
	// A valid schedule may still never fire ("0 0 30 2 *"): the cron library
	// then answers the zero time, on which callers would loop or requeue at once.
	if sched.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("schedule %q never fires", s)
	}
	return sched, nil
}

// DueBackup returns the latest schedule slot in (last, now] and the next slot
// after now. ok is false when no slot fell due. Missed slots collapse into
// one backup: after an outage the operator takes one, not a burst.
func DueBackup(sched cron.Schedule, last, now time.Time) (slot, next time.Time, ok bool) {
	t := sched.Next(last)
	for !t.IsZero() && !t.After(now) {
		slot, ok = t, true
		t = sched.Next(t)
	}
	return slot, t, ok
}

// EffectiveRetention merges the environment's override, the project's
// retention and the GDPR cap on backup age (the smaller age wins).
func EffectiveRetention(p *crmv1alpha1.ImplementationProject, env *crmv1alpha1.Environment) (keepLast int, maxAge time.Duration, err error) {
	var r crmv1alpha1.BackupRetention
	if p.Spec.Backup != nil {
		r = p.Spec.Backup.Retention
	}
	if env.Spec.Backup != nil && env.Spec.Backup.Retention != nil {
		o := env.Spec.Backup.Retention
		if o.KeepLast != nil {
			r.KeepLast = o.KeepLast
		}
		if o.MaxAge != "" {
			r.MaxAge = o.MaxAge
		}
	}
	if r.KeepLast != nil {
		keepLast = int(*r.KeepLast)
	}
	if maxAge, err = ParseDuration(r.MaxAge); err != nil {
		return 0, 0, err
	}
	if p.Spec.GDPR != nil {
		limit, err := ParseDuration(p.Spec.GDPR.MaxBackupAge)
		if err != nil {
			return 0, 0, err
		}
		if limit > 0 && (maxAge == 0 || limit < maxAge) {
			maxAge = limit
		}
	}
	return keepLast, maxAge, nil
}

// EffectiveSchedule is the environment's backup schedule, else the project's.
func EffectiveSchedule(p *crmv1alpha1.ImplementationProject, env *crmv1alpha1.Environment) crmv1alpha1.CronSchedule {
	if env.Spec.Backup != nil && env.Spec.Backup.Schedule != "" {
		return env.Spec.Backup.Schedule
	}
	if p.Spec.Backup != nil {
		return p.Spec.Backup.Schedule
	}
	return ""
}

// Expired returns the completed backups to delete: beyond the newest
// keepLast, or completed longer than maxAge ago; never one that inUse names
// (a Restore reads it). Zero keepLast or maxAge does not limit.
func Expired(backups []crmv1alpha1.Backup, keepLast int, maxAge time.Duration, now time.Time, inUse map[string]bool) []string {
	var done []crmv1alpha1.Backup
	for _, b := range backups {
		if b.Status.Phase == crmv1alpha1.BackupCompleted && b.Status.CompletedAt != nil && b.DeletionTimestamp == nil {
			done = append(done, b)
		}
	}
	// Newest first. Times have a resolution of a second: ties fall back to
	// creation, then to the name (scheduled names sort by their slot).
	sort.Slice(done, func(i, j int) bool {
		a, b := done[i], done[j]
		if !a.Status.CompletedAt.Equal(b.Status.CompletedAt) {
			return a.Status.CompletedAt.After(b.Status.CompletedAt.Time)
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.After(b.CreationTimestamp.Time)
		}
		return a.Name > b.Name
	})
	var out []string
	for i, b := range done {
		tooMany := keepLast > 0 && i >= keepLast
		tooOld := maxAge > 0 && now.Sub(b.Status.CompletedAt.Time) > maxAge
		if (tooMany || tooOld) && !inUse[b.Name] {
			out = append(out, b.Name)
		}
	}
	return out
}
