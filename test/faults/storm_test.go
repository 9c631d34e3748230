//go:build faults

package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
	"github.com/crmops/crm-operator/test/framework"
)

const (
	stormClients  = 4
	stormDuration = 15 * time.Second
	quietWindow   = 10 * time.Second
)

// stormBackoff lets a storm client outlast the other three and the
// controllers, which all write the same Deployment.
var stormBackoff = wait.Backoff{Steps: 100, Duration: 10 * time.Millisecond, Factor: 1.2, Jitter: 0.5, Cap: time.Second}

type operatorCounters struct{ reconciles, writes float64 }

func (s *suite) counters(r *replica) operatorCounters {
	s.t.Helper()
	m, err := framework.Scrape(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.metricsPort))
	if err != nil {
		s.t.Fatal(err)
	}
	return operatorCounters{
		reconciles: m.Sum("controller_runtime_reconcile_total", `controller="environment"`),
		writes:     m.Sum("rest_client_requests_total", framework.WriteMethods),
	}
}

// conflictStorm has other clients edit the operator's Environments and
// Deployments while it reconciles them: their edits must survive (no lost
// update), the operator's spec change must land, and once the storm ends the
// operator must fall silent (no hot loop).
func (s *suite) conflictStorm(r *replica, names []string) {
	t := s.t
	before := s.counters(r)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		edits     int
		conflicts int
		last      = map[string]int{} // "client/project" -> last value written
	)
	deadline := time.Now().Add(stormDuration)
	for c := 0; c < stormClients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("storm.crmops.io/c%d", c)
			for n := 1; time.Now().Before(deadline); n++ {
				for _, p := range names {
					value := fmt.Sprint(n)
					env := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Namespace: p, Name: "test"}}
					patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, key, value)
					if c == 0 && n == 3 {
						patch = fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}},"spec":{"replicas":2}}`, key, value)
					}
					if err := s.c.Patch(s.ctx, env, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
						t.Errorf("patching %s/test: %v", p, err)
						return
					}
					// Read-modify-write with optimistic concurrency, as kubectl edit does.
					tries := 0
					err := retry.RetryOnConflict(stormBackoff, func() error {
						tries++
						d := &appsv1.Deployment{}
						if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: p, Name: resources.AppName("test")}, d); err != nil {
							return err
						}
						d.Labels[key] = value
						return s.c.Update(s.ctx, d)
					})
					if err != nil {
						t.Errorf("updating %s's Deployment: %v", p, err)
						return
					}
					mu.Lock()
					edits += 2
					conflicts += tries - 1
					last[fmt.Sprintf("%d/%s", c, p)] = n
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// The operator converges on the storm's spec change...
	for _, p := range names {
		if err := framework.WaitFor(s.ctx, time.Minute, p+"/test at 2 replicas", func() (bool, error) {
			env := &crmv1alpha1.Environment{}
			d := &appsv1.Deployment{}
			if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: p, Name: "test"}, env); err != nil {
				return false, err
			}
			if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: p, Name: resources.AppName("test")}, d); err != nil {
				return false, err
			}
			return env.Status.ObservedGeneration == env.Generation && d.Spec.Replicas != nil && *d.Spec.Replicas == 2 &&
				meta.IsStatusConditionTrue(env.Status.Conditions, crmv1alpha1.ConditionReady), nil
		}); err != nil {
			t.Error(err)
		}
	}
	// ...and falls silent: nothing in these projects changes any more.
	stormEnd := s.counters(r)
	quietBefore := s.versions(names)
	pause(s.ctx, quietWindow)
	after := s.counters(r)
	changed := 0
	for k, v := range s.versions(names) {
		if quietBefore[k] != v {
			changed++
			t.Errorf("%s changed after the storm (resourceVersion %s -> %s): the operator keeps writing", k, quietBefore[k], v)
		}
	}

	// No lost update: every client's last edit is still there.
	for c := 0; c < stormClients; c++ {
		key := fmt.Sprintf("storm.crmops.io/c%d", c)
		for _, p := range names {
			want := fmt.Sprint(last[fmt.Sprintf("%d/%s", c, p)])
			env := &crmv1alpha1.Environment{}
			d := &appsv1.Deployment{}
			if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: p, Name: "test"}, env); err != nil {
				t.Fatal(err)
			}
			if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: p, Name: resources.AppName("test")}, d); err != nil {
				t.Fatal(err)
			}
			if got := env.Annotations[key]; got != want {
				t.Errorf("%s/test annotation %s = %q, want %q: an update was lost", p, key, got, want)
			}
			if got := d.Labels[key]; got != want {
				t.Errorf("%s Deployment label %s = %q, want %q: an update was lost", p, key, got, want)
			}
		}
	}
	// The client's write count includes the leader's Lease renewals (one per
	// retry period), which go on whatever happens.
	stormWrites := stormEnd.writes - before.writes
	stormReconciles := stormEnd.reconciles - before.reconciles
	quietReconciles := after.reconciles - stormEnd.reconciles
	quietWrites := after.writes - stormEnd.writes
	perObject := stormWrites / float64(len(names))
	if quietReconciles > float64(len(names)) {
		t.Errorf("after the storm the operator kept reconciling: %.0f reconciles in %s (hot loop)", quietReconciles, quietWindow)
	}
	// Bounded: each Environment's spec changed once, its status a few times,
	// whatever the number of edits by others.
	if perObject > 20 {
		t.Errorf("%.1f operator writes per Environment during the storm, want at most 20", perObject)
	}
	s.results["conflict_storm"] = map[string]any{
		"clients": stormClients, "objects": 2 * len(names), "edits": edits, "conflicts_seen_by_clients": conflicts,
		"operator_reconciles": stormReconciles, "operator_writes": stormWrites, "operator_writes_per_environment": perObject,
		"quiet_window_reconciles": quietReconciles, "quiet_window_client_writes_incl_lease": quietWrites,
		"quiet_window_objects_changed": changed, "lost_updates": 0,
	}
	t.Logf("storm: %d edits by %d clients (%d conflicts), operator %.0f reconciles / %.0f writes (%.1f per environment); quiet %s: %.0f reconciles, %.0f writes",
		edits, stormClients, conflicts, stormReconciles, stormWrites, perObject, quietWindow, quietReconciles, quietWrites)
}

// versions returns the resourceVersion of every object of the projects that
// the operator writes, keyed by kind/namespace/name.
func (s *suite) versions(names []string) map[string]string {
	s.t.Helper()
	out := map[string]string{}
	for _, ns := range names {
		for kind, list := range map[string]client.ObjectList{
			"Environment": &crmv1alpha1.EnvironmentList{}, "Deployment": &appsv1.DeploymentList{}, "StatefulSet": &appsv1.StatefulSetList{},
			"Service": &corev1.ServiceList{}, "NetworkPolicy": &networkingv1.NetworkPolicyList{}, "Ingress": &networkingv1.IngressList{},
			"Secret": &corev1.SecretList{}, "Increment": &crmv1alpha1.IncrementList{},
		} {
			if err := s.c.List(s.ctx, list, client.InNamespace(ns)); err != nil {
				s.t.Fatal(err)
			}
			items, _ := meta.ExtractList(list)
			for _, it := range items {
				o := it.(client.Object)
				out[kind+"/"+ns+"/"+o.GetName()] = o.GetResourceVersion()
			}
		}
	}
	return out
}

// hostileInput sends the invalid corpus and admitted-but-broken objects to
// the running operator: everything is refused or ends with a condition that
// says why, and the operator never crashes.
func (s *suite) hostileInput(r *replica, project string) {
	t := s.t
	files, err := filepath.Glob(filepath.Join(root, "test", "testdata", "invalid", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	tried, refused := 0, 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs := strings.Split(string(raw), "\n---\n")
		for i, doc := range docs {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil || len(u.Object) == 0 {
				continue
			}
			if ns := u.GetNamespace(); ns != "" {
				_ = s.c.Create(s.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
			}
			err := s.c.Create(s.ctx, u)
			if i == len(docs)-1 {
				tried++
				if err != nil && !apierrors.IsAlreadyExists(err) {
					refused++
				} else {
					t.Errorf("%s: admitted", filepath.Base(f))
				}
			}
		}
	}
	// Admitted, but pointing at a database Secret that is missing or wrong.
	broken := map[string]string{"extdb-missing": "", "extdb-badport": "99999"}
	for name, port := range broken {
		if port != "" {
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: project, Name: name},
				StringData: map[string]string{"host": "db.example", "database": "crm", "username": "crm", "password": "x", "port": port}}
			if err := s.c.Create(s.ctx, sec); err != nil {
				t.Fatal(err)
			}
		}
		s.apply(fmt.Sprintf(`apiVersion: crm.crmops.io/v1alpha1
kind: Environment
metadata: {name: %[2]s, namespace: %[1]s}
spec: {projectRef: {name: %[1]s}, stage: training, database: {external: {secretName: %[2]s}}}`, project, name))
		tried++
	}
	for name := range broken {
		if err := framework.WaitFor(s.ctx, time.Minute, name+" says why it is not Ready", func() (bool, error) {
			env := &crmv1alpha1.Environment{}
			if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: project, Name: name}, env); err != nil {
				return false, err
			}
			c := meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionReady)
			return c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, name), nil
		}); err != nil {
			t.Error(err)
		} else {
			refused++
		}
	}
	s.waitReady(r)
	if !r.alive() || r.crashes > 0 {
		t.Errorf("the operator crashed on hostile input (alive %v, crashes %d)", r.alive(), r.crashes)
	}
	s.results["hostile_input"] = map[string]any{"inputs": tried, "refused_or_explained": refused, "crashes": r.crashes}
	t.Logf("hostile input: %d tried, %d refused at admission or explained by a condition, %d crashes", tried, refused, r.crashes)
}
