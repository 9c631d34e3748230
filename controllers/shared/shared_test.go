package shared

import (
	"regexp"
	"testing"
)

// A generated secret is taken as it is on a command line (never an option),
// in a URL and in a config file: 64 hex digits.
func TestRandomSecretsAreSafeEverywhere(t *testing.T) {
	safe := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for range 1000 {
		s, err := RandomSecret()
		if err != nil {
			t.Fatal(err)
		}
		if !safe.Match(s) {
			t.Fatalf("secret %q is not 64 hex digits", s)
		}
	}
}
