//go:build faults

// Package faults breaks the operator's world on purpose on the simulated
// local cluster (`make test-faults`): the manager is SIGKILLed in every step
// of 30 promotions, the kube-apiserver and etcd are restarted mid-flow, the
// leader of two replicas is killed, other clients edit the same objects in a
// storm, and hostile manifests are thrown at the running operator. It prints
// the figures and writes them to bin/faults/results.json.
package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
	"github.com/crmops/crm-operator/test/fixtures"
)

const (
	projects        = 15 // two sprints each: 30 promotions under manager kills
	initialVersion  = "10.0.3"
	leaseName       = "crm-operator.crmops.io"
	leaseNamespace  = "crm-system"
	pipelineTimeout = 6 * time.Minute
)

var finalPhases = map[crmv1alpha1.IncrementPhase]bool{
	crmv1alpha1.IncrementPromoted: true, crmv1alpha1.IncrementFailed: true, crmv1alpha1.IncrementRolledBack: true,
	crmv1alpha1.IncrementRejected: true, crmv1alpha1.IncrementSuperseded: true,
}

type suite struct {
	t       *testing.T
	ctx     context.Context
	cfg     *rest.Config
	c       client.WithWatch
	rng     *rand.Rand
	uids    *uidRecorder
	steps   *stepFeed
	results map[string]any
	// accepted versions per project: production may run only these.
	acceptedMu sync.Mutex
	accepted   map[string]map[string]bool
}

func TestFaults(t *testing.T) {
	seed := int64(1)
	if v := os.Getenv("FAULTS_SEED"); v != "" {
		seed, _ = strconv.ParseInt(v, 10, 64)
	}
	t.Logf("seed %d (FAULTS_SEED=%d reproduces this run's fault schedule)", seed, seed)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	_ = os.RemoveAll(localDir)
	var controlPlane []*controlPlaneProcess
	var replicas []*replica
	t.Cleanup(func() {
		for _, r := range replicas {
			r.kill()
		}
		makeDown(t)
		for _, p := range controlPlane {
			p.stop()
		}
	})
	makeRun(t)

	s := &suite{t: t, ctx: ctx, rng: rand.New(rand.NewSource(seed)), results: map[string]any{"seed": seed}, accepted: map[string]map[string]bool{}}
	s.connect()
	s.uids = startUIDRecorder(ctx, s.c)
	s.steps = startStepFeed(ctx, s.c)
	proxy := startWebhookProxy(t)

	solo := newReplica("solo", 0)
	replicas = append(replicas, solo)
	proxy.setBackends(solo.hookPort)
	solo.start(t)
	s.waitReady(solo)

	names := make([]string, projects)
	for i := range names {
		names[i] = fmt.Sprintf("f%02d", i+1)
	}
	s.createProjects(names)

	t.Run("manager SIGKILLed in every step of 30 promotions", func(t *testing.T) {
		s.t = t
		killer := newKiller(s, solo)
		stop := killer.run()
		start := time.Now()
		for sprint := 1; sprint <= 2; sprint++ {
			s.promoteAll(names, sprint)
		}
		stop()
		// Each promotion ran once: exactly one pre-promotion backup, one
		// backup run, one migration per stage; production runs accepted versions.
		checked := 0
		for sprint := 1; sprint <= 2; sprint++ {
			checked += s.checkPromotions(names, sprint)
		}
		unkilled := killer.unkilledSteps()
		if len(unkilled) > 0 {
			t.Errorf("steps seen but never killed in: %v", unkilled)
		}
		if solo.crashes > 0 {
			t.Errorf("the manager exited %d times on its own", solo.crashes)
		}
		s.results["kill_test"] = map[string]any{
			"promotions": checked, "kills": killer.total, "kills_by_step": killer.byStep,
			"duplicates": s.uids.duplicates(), "seconds": time.Since(start).Seconds(), "crashes": solo.crashes,
		}
		t.Logf("kills: %d in %s (by step: %v); promotions checked: %d; duplicates: %d",
			killer.total, time.Since(start).Round(time.Second), killer.byStep, checked, s.uids.duplicates())
	})

	for i, name := range []string{"kube-apiserver", "etcd"} {
		t.Run(name+" restarted mid-flow", func(t *testing.T) {
			s.t = t
			p := findControlPlaneProcess(t, name)
			controlPlane = append(controlPlane, p)
			sprint := 3 + i
			batch := names[:5]
			trigger := s.steps.first(func(step string) bool { return step == "production:BackingUp" || step == "production:Migrating" })
			// After an etcd kill the simulated kubelets (kwok) and
			// kube-controller-manager have been seen to stall on a watch
			// for minutes; their real counterparts reconnect, so they are
			// restarted once the API server answers again. The operator is
			// not: its recovery is what this step tests.
			var reconnect []*controlPlaneProcess
			if name == "etcd" {
				reconnect = []*controlPlaneProcess{findControlPlaneProcess(t, "kwok"), findControlPlaneProcess(t, "kube-controller-manager")}
				controlPlane = append(controlPlane, reconnect...)
			}
			restarted := make(chan error, 1)
			go func() {
				select {
				case <-trigger:
				case <-ctx.Done():
					return
				}
				if err := p.restart(2 * time.Second); err != nil || len(reconnect) == 0 {
					restarted <- err
					return
				}
				if err := s.waitAPIServer(time.Minute); err != nil {
					restarted <- err
					return
				}
				for _, r := range reconnect {
					var beforeStart func() error
					if r.name == "kwok" {
						// A new kwok takes over the simulated nodes only once
						// the leases the killed one held expire (40 s); a
						// kubelet keeps its own.
						beforeStart = s.deleteNodeLeases
					}
					if err := r.restartWith(0, beforeStart); err != nil {
						restarted <- err
						return
					}
				}
				restarted <- nil
			}()
			start := time.Now()
			s.promoteAll(batch, sprint)
			select {
			case err := <-restarted:
				if err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("%s was never restarted: no production step was seen", name)
			}
			checked := s.checkPromotions(batch, sprint)
			if solo.crashes > 0 {
				t.Errorf("the manager exited %d times on its own", solo.crashes)
			}
			s.results[name+"_restart"] = map[string]any{"promotions": checked, "seconds": time.Since(start).Seconds(), "duplicates": s.uids.duplicates()}
		})
	}

	t.Run("leader failover between two replicas", func(t *testing.T) {
		s.t = t
		solo.kill()
		a := newReplica("a", 1, "--leader-elect")
		b := newReplica("b", 2, "--leader-elect")
		replicas = append(replicas, a, b)
		proxy.setBackends(a.hookPort, b.hookPort)
		a.start(t)
		s.waitLeader(a)
		b.start(t)
		s.waitReady(b)
		oldHolder := s.leaseHolder()

		batch := names[5:10]
		trigger := s.steps.first(func(step string) bool { return step == "production:BackingUp" })
		takeover := make(chan time.Duration, 1)
		go func() {
			select {
			case <-trigger:
			case <-ctx.Done():
				return
			}
			killed := time.Now()
			a.kill()
			_ = waitFor(ctx, time.Minute, "a new leader", func() (bool, error) {
				h := s.leaseHolder()
				return h != "" && h != oldHolder, nil
			})
			takeover <- time.Since(killed)
		}()
		s.promoteAll(batch, 5)
		checked := s.checkPromotions(batch, 5)
		var took time.Duration
		select {
		case took = <-takeover:
		default:
			t.Fatal("the leader was never killed: no production step was seen")
		}
		if took > 15*time.Second {
			t.Errorf("takeover took %s, goal 15s", took)
		}
		if !s.isLeader(b) {
			t.Error("the standby replica did not become the leader")
		}
		s.results["failover"] = map[string]any{"takeover_seconds": took.Seconds(), "promotions": checked, "duplicates": s.uids.duplicates(),
			"lease": "8s lease, 6s renew deadline, 1s retry"}
		t.Logf("takeover after SIGKILL of the leader: %s", took.Round(10*time.Millisecond))
		solo = b // the storm and hostile input run against the surviving leader
	})

	t.Run("conflict storm: other clients edit the same objects", func(t *testing.T) {
		s.t = t
		s.conflictStorm(solo, names[10:15])
	})

	t.Run("hostile manifests against the running operator", func(t *testing.T) {
		s.t = t
		s.hostileInput(solo, names[0])
	})

	s.results["duplicates"] = s.uids.duplicates()
	s.results["crashes"] = solo.crashes
	s.report()
}

func (s *suite) connect() {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubecfg)
	if err != nil {
		s.t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = crmv1alpha1.AddToScheme(scheme)
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		s.t.Fatal(err)
	}
	s.cfg, s.c = cfg, c
}

// deleteNodeLeases deletes the simulated nodes' leases.
func (s *suite) deleteNodeLeases() error {
	nodes := &corev1.NodeList{}
	if err := s.c.List(s.ctx, nodes); err != nil {
		return err
	}
	for _, n := range nodes.Items {
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: n.Name}}
		if err := s.c.Delete(s.ctx, lease); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// waitAPIServer polls the API server's readiness (etcd included).
func (s *suite) waitAPIServer(timeout time.Duration) error {
	dc, err := discovery.NewDiscoveryClientForConfig(s.cfg)
	if err != nil {
		return err
	}
	return waitFor(s.ctx, timeout, "the API server ready again", func() (bool, error) {
		err := dc.RESTClient().Get().AbsPath("/readyz").Do(s.ctx).Error()
		return err == nil, err
	})
}

// as returns a client that acts as user (impersonation).
func (s *suite) as(user string) client.Client {
	cfg := rest.CopyConfig(s.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: s.c.Scheme()})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func (s *suite) waitReady(r *replica) {
	s.t.Helper()
	err := waitFor(s.ctx, 90*time.Second, "replica "+r.name+" ready", func() (bool, error) {
		_, err := fixtures.Scrape(fmt.Sprintf("http://127.0.0.1:%d/readyz", r.probePort))
		return err == nil, err
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

func (s *suite) isLeader(r *replica) bool {
	m, err := fixtures.Scrape(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.metricsPort))
	return err == nil && m.Sum("leader_election_master_status") == 1
}

func (s *suite) waitLeader(r *replica) {
	s.t.Helper()
	if err := waitFor(s.ctx, 90*time.Second, "replica "+r.name+" leads", func() (bool, error) { return s.isLeader(r), nil }); err != nil {
		s.t.Fatal(err)
	}
}

func (s *suite) leaseHolder() string {
	l := &coordinationv1.Lease{}
	if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: leaseNamespace, Name: leaseName}, l); err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// create creates obj, retrying while the API server or the webhook is down.
func (s *suite) create(obj client.Object) error {
	return waitFor(s.ctx, 2*time.Minute, "creating "+obj.GetName(), func() (bool, error) {
		err := s.c.Create(s.ctx, obj.DeepCopyObject().(client.Object))
		if err == nil || apierrors.IsAlreadyExists(err) {
			return true, nil
		}
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			return false, fmt.Errorf("refused: %w", err) // would never pass: reported at the deadline
		}
		return false, err
	})
}

func (s *suite) apply(manifest string) {
	s.t.Helper()
	for _, doc := range strings.Split(manifest, "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			s.t.Fatal(err)
		}
		if err := s.create(u); err != nil {
			s.t.Fatal(err)
		}
	}
}

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
		if err := waitFor(s.ctx, time.Minute, "namespace "+n, func() (bool, error) {
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
			if err := waitFor(s.ctx, 3*time.Minute, n+"/"+e+" Ready", func() (bool, error) {
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
	if err := waitFor(s.ctx, pipelineTimeout, "verified on test", func() (bool, error) {
		p := phase()
		return p == crmv1alpha1.IncrementAwaitingAcceptance || finalPhases[p], nil
	}); err != nil {
		return err
	}
	if p := phase(); finalPhases[p] {
		return fmt.Errorf("ended %s on test", p)
	}
	po := s.as("po@" + project + ".example")
	if err := waitFor(s.ctx, time.Minute, "acceptance", func() (bool, error) {
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
	return waitFor(s.ctx, pipelineTimeout, "promoted", func() (bool, error) { return finalPhases[phase()], nil })
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

// uidRecorder remembers every UID seen per Job and Backup name: a name with
// two UIDs was created twice, i.e. work was done twice.
type uidRecorder struct {
	mu   sync.Mutex
	seen map[string]map[types.UID]bool
}

func startUIDRecorder(ctx context.Context, c client.WithWatch) *uidRecorder {
	r := &uidRecorder{seen: map[string]map[types.UID]bool{}}
	record := func(kind string) func(client.Object) {
		return func(o client.Object) {
			if o.GetLabels()[crmv1alpha1.LabelManagedBy] != crmv1alpha1.ManagedByValue && kind == "Job" {
				return
			}
			k := kind + "/" + o.GetNamespace() + "/" + o.GetName()
			r.mu.Lock()
			if r.seen[k] == nil {
				r.seen[k] = map[types.UID]bool{}
			}
			r.seen[k][o.GetUID()] = true
			r.mu.Unlock()
		}
	}
	go watchAll(ctx, c, func() client.ObjectList { return &batchv1.JobList{} }, record("Job"))
	go watchAll(ctx, c, func() client.ObjectList { return &crmv1alpha1.BackupList{} }, record("Backup"))
	return r
}

func (r *uidRecorder) count(kind, ns, name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen[kind+"/"+ns+"/"+name])
}

func (r *uidRecorder) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, uids := range r.seen {
		if len(uids) > 1 {
			n++
		}
	}
	return n
}

// watchAll lists and watches a kind across namespaces for as long as ctx
// lives, listing again after the watch breaks (an API server restart).
func watchAll(ctx context.Context, c client.WithWatch, newList func() client.ObjectList, handle func(client.Object)) {
	for ctx.Err() == nil {
		list := newList()
		if err := c.List(ctx, list); err != nil {
			pause(ctx, 300*time.Millisecond)
			continue
		}
		items, _ := meta.ExtractList(list)
		for _, it := range items {
			handle(it.(client.Object))
		}
		w, err := c.Watch(ctx, newList(), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.GetResourceVersion()}})
		if err != nil {
			pause(ctx, 300*time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				break
			}
			if o, ok := ev.Object.(client.Object); ok {
				handle(o)
			}
		}
		w.Stop()
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// stepFeed turns Increment events into steps of the flow ("acceptance",
// "production:BackingUp", ...) for the fault schedule.
type stepFeed struct {
	mu   sync.Mutex
	subs []func(step string)
}

func startStepFeed(ctx context.Context, c client.WithWatch) *stepFeed {
	f := &stepFeed{}
	go watchAll(ctx, c, func() client.ObjectList { return &crmv1alpha1.IncrementList{} }, func(o client.Object) {
		inc, ok := o.(*crmv1alpha1.Increment)
		if !ok {
			return
		}
		var steps []string
		if inc.Status.Phase == crmv1alpha1.IncrementAwaitingAcceptance {
			steps = append(steps, "acceptance")
		}
		for _, st := range inc.Status.Stages {
			switch st.Phase {
			case crmv1alpha1.StageSucceeded, crmv1alpha1.StageFailed, crmv1alpha1.StageRolledBack, "":
			default:
				steps = append(steps, st.Name+":"+string(st.Phase))
			}
		}
		f.mu.Lock()
		subs := append([]func(string){}, f.subs...)
		f.mu.Unlock()
		for _, step := range steps {
			for _, sub := range subs {
				sub(step)
			}
		}
	})
	return f
}

func (f *stepFeed) subscribe(fn func(step string)) {
	f.mu.Lock()
	f.subs = append(f.subs, fn)
	f.mu.Unlock()
}

// first returns a channel closed when a step matching match is first seen.
func (f *stepFeed) first(match func(string) bool) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	f.subscribe(func(step string) {
		if match(step) {
			once.Do(func() { close(ch) })
		}
	})
	return ch
}

// killer SIGKILLs the manager the first time each step of the flow is seen,
// and again at seeded random intervals, restarting it after a seeded pause.
type killer struct {
	s       *suite
	r       *replica
	mu      sync.Mutex
	seen    map[string]bool
	byStep  map[string]int
	total   int
	pending chan string
}

func newKiller(s *suite, r *replica) *killer {
	return &killer{s: s, r: r, seen: map[string]bool{}, byStep: map[string]int{}, pending: make(chan string, 1024)}
}

func (k *killer) run() (stop func()) {
	ctx, cancel := context.WithCancel(k.s.ctx)
	k.s.steps.subscribe(func(step string) {
		k.mu.Lock()
		first := !k.seen[step]
		k.seen[step] = true
		k.mu.Unlock()
		if first {
			select {
			case k.pending <- step:
			default:
			}
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		next := time.After(k.interval())
		for {
			var step string
			select {
			case <-ctx.Done():
				return
			case step = <-k.pending:
				k.mu.Lock()
				already := k.byStep[step] > 0
				k.mu.Unlock()
				if already {
					continue
				}
			case <-next:
				step, next = "random", time.After(k.interval())
			}
			k.killAndRestart(step)
		}
	}()
	return func() {
		cancel()
		<-done
		if !k.r.alive() {
			k.r.start(k.s.t)
		}
	}
}

func (k *killer) interval() time.Duration {
	return time.Duration(4000+k.s.rng.Intn(6000)) * time.Millisecond
}

func (k *killer) killAndRestart(step string) {
	k.r.kill()
	k.mu.Lock()
	k.byStep[step]++
	k.total++
	k.mu.Unlock()
	pause(k.s.ctx, time.Duration(200+k.s.rng.Intn(2000))*time.Millisecond)
	k.r.start(k.s.t)
}

// unkilledSteps lists steps seen during the run in which no kill happened.
func (k *killer) unkilledSteps() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for step := range k.seen {
		if k.byStep[step] == 0 {
			out = append(out, step)
		}
	}
	sort.Strings(out)
	return out
}
