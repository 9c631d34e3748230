//go:build faults

package faults

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
	"github.com/crmops/crm-operator/test/framework"
)

// What the suite runs through the faults: projects, their environments, and
// increments promoted from test to production, checked afterwards.

func projectManifest(name string) string {
	return fmt.Sprintf(`apiVersion: crm.crmops.io/v1alpha1
kind: ImplementationProject
metadata: {name: %[1]s}
spec:
  customer: {name: Fault Test %[1]s GmbH, contact: crm@%[1]s.example}
  product: {name: espocrm, version: "%[2]s"}
  hosting: {mode: cloud, region: eu-central-1, domain: %[1]s.faults.example}
  productOwners: {users: ["po@%[1]s.example"]}
  stages: [test, production]
  backup:
    schedule: "30 2 * * *"
    retention: {keepLast: 14}
    target: {s3: {endpoint: "https://s3.eu-central-1.example.net", bucket: faults, region: eu-central-1, secretName: backup-s3}}`, name, initialVersion)
}

func environmentsManifest(project string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Secret
metadata: {name: backup-s3, namespace: %[1]s}
stringData: {AWS_ACCESS_KEY_ID: faults, AWS_SECRET_ACCESS_KEY: faults-secret-not-used}`, project)
	for _, stage := range []string{"test", "production"} {
		fmt.Fprintf(&b, `
---
apiVersion: crm.crmops.io/v1alpha1
kind: Environment
metadata: {name: %[2]s, namespace: %[1]s}
spec: {projectRef: {name: %[1]s}, stage: %[2]s, ingress: {host: %[2]s.%[1]s.faults.example, tlsSecretName: %[2]s-tls}}`, project, stage)
	}
	return b.String()
}

func (s *suite) createProjects(names []string) {
	s.t.Helper()
	start := time.Now()
	for _, n := range names {
		s.apply(projectManifest(n))
	}
	for _, n := range names {
		if err := framework.WaitFor(s.ctx, time.Minute, "namespace "+n, func() (bool, error) {
			err := s.c.Get(s.ctx, types.NamespacedName{Name: n}, &corev1.Namespace{})
			return err == nil, err
		}); err != nil {
			s.t.Fatal(err)
		}
		s.apply(environmentsManifest(n))
		s.accepted[n] = map[string]bool{initialVersion: true}
	}
	for _, n := range names {
		for _, e := range []string{"test", "production"} {
			if err := framework.WaitFor(s.ctx, 3*time.Minute, n+"/"+e+" Ready", func() (bool, error) {
				env := &crmv1alpha1.Environment{}
				err := s.c.Get(s.ctx, types.NamespacedName{Namespace: n, Name: e}, env)
				return err == nil && meta.IsStatusConditionTrue(env.Status.Conditions, crmv1alpha1.ConditionReady), err
			}); err != nil {
				s.t.Fatal(err)
			}
		}
	}
	s.t.Logf("%d projects with test and production Ready in %s", len(names), time.Since(start).Round(time.Second))
}

// promoteAll runs one sprint's increment through test, acceptance and
// production in every project at once, as CI and the product owners do.
func (s *suite) promoteAll(names []string, sprint int) {
	s.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.pipeline(n, sprint); err != nil {
				errs <- fmt.Errorf("%s sprint-%d: %w", n, sprint, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		s.t.Error(err)
	}
	if s.t.Failed() {
		s.t.FailNow()
	}
}

func (s *suite) pipeline(project string, sprint int) error {
	name := fmt.Sprintf("sprint-%d", sprint)
	version := fmt.Sprintf("10.1.%d", sprint)
	inc := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(fmt.Sprintf(`apiVersion: crm.crmops.io/v1alpha1
kind: Increment
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  projectRef: {name: %[2]s}
  sprint: %[3]d
  version: "%[4]s"
  autoPromote: true
  migration: {command: [php, command.php, rebuild]}`, name, project, sprint, version)), &inc.Object); err != nil {
		return err
	}
	if err := s.create(inc); err != nil {
		return err
	}
	key := types.NamespacedName{Namespace: project, Name: name}
	phase := func() crmv1alpha1.IncrementPhase {
		i := &crmv1alpha1.Increment{}
		if err := s.c.Get(s.ctx, key, i); err != nil {
			return ""
		}
		return i.Status.Phase
	}
	if err := framework.WaitFor(s.ctx, pipelineTimeout, "verified on test", func() (bool, error) {
		p := phase()
		return p == crmv1alpha1.IncrementAwaitingAcceptance || finalPhases[p], nil
	}); err != nil {
		return err
	}
	if p := phase(); finalPhases[p] {
		return fmt.Errorf("ended %s on test", p)
	}
	po := s.as("po@" + project + ".example")
	if err := framework.WaitFor(s.ctx, time.Minute, "acceptance", func() (bool, error) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			i := &crmv1alpha1.Increment{}
			if err := po.Get(s.ctx, key, i); err != nil {
				return err
			}
			i.Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: crmv1alpha1.DecisionAccepted}
			return po.Update(s.ctx, i)
		})
		return err == nil, err
	}); err != nil {
		return err
	}
	s.acceptedMu.Lock()
	s.accepted[project][version] = true
	s.acceptedMu.Unlock()
	return framework.WaitFor(s.ctx, pipelineTimeout, "promoted", func() (bool, error) { return finalPhases[phase()], nil })
}

// checkPromotions verifies each promotion of a sprint ran its work exactly
// once and that production runs only accepted versions; it returns how many
// promotions it checked.
func (s *suite) checkPromotions(names []string, sprint int) int {
	s.t.Helper()
	name := fmt.Sprintf("sprint-%d", sprint)
	for _, n := range names {
		i := &crmv1alpha1.Increment{}
		if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: n, Name: name}, i); err != nil {
			s.t.Fatal(err)
		}
		if i.Status.Phase != crmv1alpha1.IncrementPromoted {
			s.t.Errorf("%s/%s ended %s: %s", n, name, i.Status.Phase, conditionMessages(i.Status.Conditions))
			continue
		}
		if i.Status.AcceptedBy != "po@"+n+".example" {
			s.t.Errorf("%s/%s accepted by %q", n, name, i.Status.AcceptedBy)
		}
		backups := &crmv1alpha1.BackupList{}
		if err := s.c.List(s.ctx, backups, client.InNamespace(n)); err != nil {
			s.t.Fatal(err)
		}
		pre := 0
		for _, b := range backups.Items {
			if b.Spec.Increment == name && b.Spec.Reason == crmv1alpha1.BackupPrePromotion {
				pre++
			}
		}
		preName := resources.AgentJobName(name, "pre-production")
		runs := map[string]int{
			"pre-promotion Backups":        pre,
			"Backup objects " + preName:    s.uids.count("Backup", n, preName),
			"backup Jobs":                  s.uids.count("Job", n, resources.AgentJobName(preName, "backup")),
			"migration Jobs on test":       s.uids.count("Job", n, resources.AgentJobName(name, "migrate-test")),
			"migration Jobs on production": s.uids.count("Job", n, resources.AgentJobName(name, "migrate-production")),
		}
		for what, got := range runs {
			if got != 1 {
				s.t.Errorf("%s/%s: %d %s, want exactly 1", n, name, got, what)
			}
		}
	}
	for _, n := range names {
		env := &crmv1alpha1.Environment{}
		if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: n, Name: "production"}, env); err != nil {
			s.t.Fatal(err)
		}
		s.acceptedMu.Lock()
		ok := s.accepted[n][env.Status.Version]
		s.acceptedMu.Unlock()
		if !ok {
			s.t.Errorf("production of %s runs %q, which nobody accepted", n, env.Status.Version)
		}
	}
	return len(names)
}

func conditionMessages(conds []metav1.Condition) string {
	var parts []string
	for _, c := range conds {
		if c.Status == metav1.ConditionTrue || c.Type == crmv1alpha1.ConditionFailed {
			parts = append(parts, c.Type+"="+string(c.Status)+" ("+c.Reason+": "+c.Message+")")
		}
	}
	return strings.Join(parts, "; ")
}

func (s *suite) report() {
	data, _ := json.MarshalIndent(s.results, "", "  ")
	_ = os.WriteFile(filepath.Join(localDir, "results.json"), data, 0o600)
	keys := make([]string, 0, len(s.results))
	for k := range s.results {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\nmake test-faults figures (also in bin/faults/results.json):\n")
	for _, k := range keys {
		v, _ := json.Marshal(s.results[k])
		fmt.Fprintf(&b, "  %-26s %s\n", k, v)
	}
	fmt.Print(b.String())
}
