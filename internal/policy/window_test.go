package policy

import (
	"testing"
	"time"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

func TestInWindow(t *testing.T) {
	sunday := &crmv1alpha1.MaintenanceWindow{Schedule: "0 22 * * 0", Duration: "4h"} // Sunday 22:00 to Monday 02:00
	tests := []struct {
		name string
		now  time.Time
		open bool
		next time.Time
	}{
		{"Saturday", time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), false, time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)},
		{"as it opens", time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC), true, time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)},
		{"past midnight inside", time.Date(2026, 11, 30, 1, 59, 0, 0, time.UTC), true, time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)},
		{"as it closes", time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC), false, time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open, at, err := InWindow(sunday, tt.now)
			if err != nil || open != tt.open || !at.Equal(tt.next) {
				t.Errorf("InWindow = %v %v %v, want %v %v", open, at, err, tt.open, tt.next)
			}
		})
	}
}
