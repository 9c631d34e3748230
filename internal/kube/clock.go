package kube

import "time"

// Clock tells the time of schedules, retention and deadlines; the zero
// Clock is the wall clock, and tests move it.
type Clock func() time.Time

// Now is the clock's time.
func (c Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}
