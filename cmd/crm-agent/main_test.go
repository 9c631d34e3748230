package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A new user's first commands: help is an answer on stdout, a mistyped
// command is named, not reported as a missing --name.
func TestHelpAndUnknownCommands(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "crm-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"help"}, 0, "restore --name N [flags]", ""},
		{[]string{"--help"}, 0, "erase --product P [flags]", ""},
		{[]string{"-h"}, 0, "usage: crm-agent COMMAND", ""},
		{[]string{"backup", "--help"}, 0, "-s3-endpoint", ""},
		{[]string{"restore", "-h"}, 0, "-anonymize", ""},
		{[]string{"bakup", "--name", "x"}, 2, "", `unknown command "bakup"`},
		{nil, 2, "", "usage: crm-agent COMMAND"},
	} {
		cmd := exec.Command(bin, tc.args...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("crm-agent %v: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
}
