package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/agent"
	"github.com/crmops/crm-operator/internal/resources"
)

// userClient talks to the API server as an authenticated user, with only the
// rights RBAC gives that user.
func userClient(t *testing.T, name string) client.Client {
	t.Helper()
	u, err := env.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = crmv1alpha1.AddToScheme(scheme)
	c, err := client.New(u.Config(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// completeJob plays the Job controller: the Job's final conditions.
func completeJob(ctx context.Context, g Gomega, ns, name string, succeeded bool) {
	g.Expect(jobOutcome(ctx, ns, name, succeeded)).To(Succeed())
}

func jobOutcome(ctx context.Context, ns, name string, succeeded bool) error {
	job := &batchv1.Job{}
	if err := k8s.Get(ctx, key(ns, name), job); err != nil {
		return err
	}
	now := metav1.Now()
	start := metav1.NewTime(now.Add(-time.Minute))
	job.Status.StartTime = &start
	if succeeded {
		job.Status.Succeeded, job.Status.CompletionTime = 1, &now
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
	} else {
		job.Status.Failed = 1
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
		}
	}
	return k8s.Status().Update(ctx, job)
}

// successCriteriaMet plays the Job controller's first verdict on a Job
// whose pods succeeded, before it adds Complete.
func successCriteriaMet(ctx context.Context, g Gomega, ns, name string) {
	job := &batchv1.Job{}
	g.Expect(k8s.Get(ctx, key(ns, name), job)).To(Succeed())
	now := metav1.Now()
	job.Status.StartTime, job.Status.Succeeded = &now, 1 // completionTime comes with Complete
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	g.Expect(k8s.Status().Update(ctx, job)).To(Succeed())
}

// markRolledOut waits until the environment's application runs version,
// then reports its workloads ready (as the kubelets would) until the
// environment is Ready on that version: a later re-apply needs another report.
func markRolledOut(ctx context.Context, g Gomega, ns, env, version string) {
	g.Eventually(func(g Gomega) {
		d := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, key(ns, resources.AppName(env)), d)).To(Succeed())
		g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":" + version))
		markWorkloads(ctx, g, ns, env)
		e := &crmv1alpha1.Environment{}
		g.Expect(k8s.Get(ctx, key(ns, env), e)).To(Succeed())
		g.Expect(e.Status.Version).To(Equal(version))
		g.Expect(meta.IsStatusConditionTrue(e.Status.Conditions, crmv1alpha1.ConditionReady)).To(BeTrue())
	}).WithTimeout(wait).WithPolling(300 * time.Millisecond).Should(Succeed())
}

// pastVerifyDeadline moves the operator's clock past an increment's
// verification deadline and wakes it (its requeue is set for the real time).
// The clock moves only once the deadline is on record: the Environment
// changes before the increment's status write that records when the rollout
// started, and a start taken on the moved clock would never pass.
func pastVerifyDeadline(ctx context.Context, g Gomega, inc *crmv1alpha1.Increment) {
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc)).To(Succeed())
		g.Expect(inc.Status.Stages).To(ContainElement(And(
			HaveField("Phase", crmv1alpha1.StageVerifying),
			HaveField("RolloutStartedAt", Not(BeNil())))))
	}).WithTimeout(wait).Should(Succeed())
	clockOffset.Store(int64(11 * time.Minute))
	g.Expect(updateIncrement(ctx, k8s, inc, func(i *crmv1alpha1.Increment) {
		if i.Annotations == nil {
			i.Annotations = map[string]string{}
		}
		i.Annotations["wake"] = time.Now().String()
	})).To(Succeed())
	g.Eventually(func() bool {
		_ = k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc)
		return promotionFinal(inc.Status.Phase) || stageRestoring(inc)
	}).WithTimeout(wait).Should(BeTrue())
	clockOffset.Store(0)
}

// stageRestoring reports whether a stage of inc waits for its rollback Restore.
func stageRestoring(inc *crmv1alpha1.Increment) bool {
	for _, s := range inc.Status.Stages {
		if s.Phase == crmv1alpha1.StageRestoring {
			return true
		}
	}
	return false
}

// completeRestore plays what a real cluster does for a Restore into env:
// the application's pods stop, the agent's Job succeeds.
func completeRestore(ctx context.Context, g Gomega, ns, restore, env string) {
	rs := &crmv1alpha1.Restore{}
	g.Eventually(func() crmv1alpha1.RestorePhase {
		_ = k8s.Get(ctx, key(ns, restore), rs)
		return rs.Status.Phase
	}).WithTimeout(wait).Should(Equal(crmv1alpha1.RestoreRunning))
	job := resources.AgentJobName(restore, "restore")
	g.Eventually(func(g Gomega) {
		markWorkloads(ctx, g, ns, env)
		g.Expect(k8s.Get(ctx, key(ns, job), &batchv1.Job{})).To(Succeed())
	}).WithTimeout(wait).WithPolling(300 * time.Millisecond).Should(Succeed())
	g.Eventually(func(g Gomega) {
		finishJob(ctx, g, ns, job, agent.Result{Location: "s3://crm-backups/" + ns + "/" + env, Size: 1}, true)
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(func() crmv1alpha1.RestorePhase {
		_ = k8s.Get(ctx, key(ns, restore), rs)
		return rs.Status.Phase
	}).WithTimeout(wait).Should(Equal(crmv1alpha1.RestoreCompleted))
}

func promotionFinal(p crmv1alpha1.IncrementPhase) bool {
	return p == crmv1alpha1.IncrementRolledBack || p == crmv1alpha1.IncrementFailed || p == crmv1alpha1.IncrementPromoted
}

func incPhase(ctx context.Context, inc *crmv1alpha1.Increment) func() crmv1alpha1.IncrementPhase {
	return func() crmv1alpha1.IncrementPhase {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc); err != nil {
			return "missing"
		}
		return inc.Status.Phase
	}
}

// envVersion reads the version an environment is set to run. Polled, it
// also plays the Job controller for the product's upgrade Jobs of that
// environment that run no increment migration (a version change of an
// increment without spec.migration): they succeed. Jobs with a migration
// are the tests' to finish.
func envVersion(ctx context.Context, ns, name string) func() string {
	return func() string {
		jobs := &batchv1.JobList{}
		_ = k8s.List(ctx, jobs, client.InNamespace(ns), client.MatchingLabels{crmv1alpha1.LabelEnvironment: name, resources.LabelComponent: resources.ComponentMigration})
		for _, j := range jobs.Items {
			if len(j.Status.Conditions) == 0 && j.Spec.Template.Spec.Containers[0].Name == "upgrade" {
				_ = jobOutcome(ctx, ns, j.Name, true) // a conflict is retried on the next poll
			}
		}
		e := &crmv1alpha1.Environment{}
		_ = k8s.Get(ctx, key(ns, name), e)
		return e.Spec.Version
	}
}

// updateIncrement changes an increment as c, retrying on conflicts.
func updateIncrement(ctx context.Context, c client.Client, inc *crmv1alpha1.Increment, change func(*crmv1alpha1.Increment)) error {
	var err error
	for range 10 {
		cur := &crmv1alpha1.Increment{}
		if err = c.Get(ctx, client.ObjectKeyFromObject(inc), cur); err != nil {
			return err
		}
		change(cur)
		if err = c.Update(ctx, cur); !apierrors.IsConflict(err) {
			return err
		}
	}
	return err
}

func TestIncrementFromTestToProduction(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("promo", 10)
	p.Spec.Integrators = &crmv1alpha1.Subjects{Users: []string{"mallory@integrator.example"}}
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
	readyEnvironment(ctx, t, p, "production", crmv1alpha1.StageProduction)
	po := userClient(t, "po@customer.example")
	mallory := userClient(t, "mallory@integrator.example")

	inc := &crmv1alpha1.Increment{
		ObjectMeta: metav1.ObjectMeta{Name: "sprint-1", Namespace: ns},
		Spec: crmv1alpha1.IncrementSpec{
			ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: 1, Version: "18.1",
			Changes: []crmv1alpha1.Change{
				{ID: "CRM-1", Title: "Lead scoring", Hours: 16},
				{ID: "CRM-2", Title: "Quote approval", Hours: 24},
			},
			Migration: &crmv1alpha1.Migration{Command: []string{"odoo", "-u", "crm", "--stop-after-init"}},
		},
	}
	g.Expect(k8s.Create(ctx, inc)).To(Succeed())

	// Test: the migration is rehearsed first, then the rollout, then verification.
	migrateTest := resources.AgentJobName("sprint-1", "migrate-test")
	g.Eventually(exists(ctx, &batchv1.Job{}, ns, migrateTest)).WithTimeout(wait).Should(Succeed())
	g.Expect(envVersion(ctx, ns, "test")()).NotTo(Equal("18.1"), "rolled out before the migration ran")
	g.Eventually(func(g Gomega) { completeJob(ctx, g, ns, migrateTest, true) }).WithTimeout(wait).Should(Succeed())
	g.Eventually(envVersion(ctx, ns, "test")).WithTimeout(wait).Should(Equal("18.1"))
	markRolledOut(ctx, g, ns, "test", "18.1")
	g.Eventually(incPhase(ctx, inc)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementAwaitingAcceptance))
	g.Expect(condition(ctx, inc, func() []metav1.Condition { return inc.Status.Conditions }, crmv1alpha1.ConditionDeployed)()).To(Equal(metav1.ConditionTrue))
	g.Expect(condition(ctx, inc, func() []metav1.Condition { return inc.Status.Conditions }, crmv1alpha1.ConditionVerified)()).To(Equal(metav1.ConditionTrue))
	g.Expect(envVersion(ctx, ns, "production")()).To(Equal(""), "production changed before acceptance")

	t.Run("a non-owner cannot accept", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func() string {
			err := updateIncrement(ctx, mallory, inc, func(i *crmv1alpha1.Increment) {
				i.Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: crmv1alpha1.DecisionAccepted}
			})
			if err == nil {
				return "accepted"
			}
			return err.Error()
		}).WithTimeout(wait).Should(ContainSubstring("only a product owner of project promo may accept or reject increment sprint-1; user mallory@integrator.example is not one"))
	})

	t.Run("nobody writes the accepted-by stamp", func(t *testing.T) {
		g := NewWithT(t)
		err := updateIncrement(ctx, mallory, inc, func(i *crmv1alpha1.Increment) {
			i.Annotations = map[string]string{crmv1alpha1.AnnotationAcceptedBy: "po@customer.example"}
		})
		g.Expect(err).To(HaveOccurred())
		g.Expect(err.Error()).To(ContainSubstring("cannot be written by clients"))
	})

	t.Run("the product owner accepts; the API records who", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(updateIncrement(ctx, po, inc, func(i *crmv1alpha1.Increment) {
			i.Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: crmv1alpha1.DecisionAccepted, Comment: "works on test"}
		})).To(Succeed())
		g.Eventually(func() string {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc)
			return inc.Status.AcceptedBy
		}).WithTimeout(wait).Should(Equal("po@customer.example"))
		g.Expect(inc.Status.AcceptedAt).NotTo(BeNil())
		g.Expect(inc.Status.Phase).To(Equal(crmv1alpha1.IncrementAwaitingPromotion))
		// Signed off, not yet in production: its 40 hours are owed.
		project := &crmv1alpha1.ImplementationProject{}
		g.Eventually(func() int32 {
			_ = k8s.Get(ctx, key("", ns), project)
			return project.Status.AcceptedHours
		}).WithTimeout(wait).Should(Equal(int32(40)))
		g.Expect(project.Status.DeliveredHours).To(BeZero())
		budget := meta.FindStatusCondition(project.Status.Conditions, crmv1alpha1.ConditionBudgetExceeded)
		g.Expect(budget).NotTo(BeNil())
		g.Expect(budget.Reason).To(Equal("NoBudget"))

		// A forged status is replaced by what the API recorded.
		forged := inc.DeepCopy()
		forged.Status.AcceptedBy = "mallory@integrator.example"
		g.Expect(k8s.Status().Update(ctx, forged)).To(Succeed())
		g.Eventually(func() string {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc)
			return inc.Status.AcceptedBy
		}).WithTimeout(wait).Should(Equal("po@customer.example"))
	})

	t.Run("production only after a completed pre-promotion backup", func(t *testing.T) {
		g := NewWithT(t)
		promotedBefore, _ := metricValue(g, "crm_promotions_total", map[string]string{"target": "production", "result": "promoted"})
		acceptedBefore, _ := metricValue(g, "crm_acceptance_to_production_seconds", nil)
		g.Expect(updateIncrement(ctx, k8s, inc, func(i *crmv1alpha1.Increment) { i.Spec.Promote = true })).To(Succeed())
		pre := &crmv1alpha1.Backup{}
		preName := resources.AgentJobName("sprint-1", "pre-production")
		g.Eventually(exists(ctx, pre, ns, preName)).WithTimeout(wait).Should(Succeed())
		g.Expect(pre.Spec.Reason).To(Equal(crmv1alpha1.BackupPrePromotion))
		g.Expect(pre.Spec.Increment).To(Equal("sprint-1"))
		g.Eventually(backupPhase(ctx, pre)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupRunning))
		g.Consistently(envVersion(ctx, ns, "production")).WithTimeout(time.Second).Should(Equal(""))
		g.Expect(k8s.Get(ctx, key(ns, resources.AgentJobName("sprint-1", "migrate-production")), &batchv1.Job{})).NotTo(Succeed())
		// What production runs is on record from the stage's start, before
		// anything changes it: the rollout needs no write of its own first.
		prod := &crmv1alpha1.Environment{}
		g.Expect(k8s.Get(ctx, key(ns, "production"), prod)).To(Succeed())
		g.Expect(prod.Status.Version).NotTo(BeEmpty())
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc)).To(Succeed())
		stage := inc.Status.Stages[len(inc.Status.Stages)-1]
		g.Expect(stage.PreviousVersion).To(Equal(prod.Status.Version))
		g.Expect(stage.RolloutStartedAt).To(BeNil())

		g.Eventually(func(g Gomega) {
			finishJob(ctx, g, ns, pre.Status.JobName, agent.Result{Location: "s3://crm-backups/promo/production/" + preName, Size: 2048}, true)
		}).WithTimeout(wait).Should(Succeed())
		g.Eventually(condition(ctx, inc, func() []metav1.Condition { return inc.Status.Conditions }, crmv1alpha1.ConditionBackedUp)).
			WithTimeout(wait).Should(Equal(metav1.ConditionTrue))

		migrateProd := resources.AgentJobName("sprint-1", "migrate-production")
		g.Eventually(exists(ctx, &batchv1.Job{}, ns, migrateProd)).WithTimeout(wait).Should(Succeed())
		g.Eventually(func(g Gomega) { completeJob(ctx, g, ns, migrateProd, true) }).WithTimeout(wait).Should(Succeed())
		g.Eventually(envVersion(ctx, ns, "production")).WithTimeout(wait).Should(Equal("18.1"))
		markRolledOut(ctx, g, ns, "production", "18.1")
		g.Eventually(incPhase(ctx, inc)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementPromoted))
		g.Expect(condition(ctx, inc, func() []metav1.Condition { return inc.Status.Conditions }, crmv1alpha1.ConditionPromoted)()).To(Equal(metav1.ConditionTrue))
		promoted, _ := metricValue(g, "crm_promotions_total", map[string]string{"target": "production", "result": "promoted"})
		g.Expect(promoted - promotedBefore).To(Equal(1.0))
		accepted, _ := metricValue(g, "crm_acceptance_to_production_seconds", nil)
		g.Expect(accepted - acceptedBefore).To(Equal(1.0))

		project := &crmv1alpha1.ImplementationProject{}
		g.Eventually(func() int32 {
			_ = k8s.Get(ctx, key("", ns), project)
			return project.Status.DeliveredHours
		}).WithTimeout(wait).Should(Equal(int32(40)))
		g.Expect(project.Status.AcceptedHours).To(BeZero(), "promoted hours are delivered, no longer owed")
		g.Expect(project.Status.Blocks).To(Equal([]crmv1alpha1.BlockHours{{Block: "", DeliveredHours: 40}}))
		g.Expect(project.Status.Production).NotTo(BeNil())
		g.Expect(project.Status.Production.Version).To(Equal("18.1"))
		g.Expect(project.Status.Production.Increment).To(Equal("sprint-1"))
		prod = &crmv1alpha1.Environment{}
		g.Eventually(func() string {
			_ = k8s.Get(ctx, key(ns, "production"), prod)
			return prod.Status.CurrentIncrement
		}).WithTimeout(wait).Should(Equal("sprint-1"))

		// Exactly one pre-promotion backup and one migration per stage.
		backups := &crmv1alpha1.BackupList{}
		g.Expect(k8s.List(ctx, backups, client.InNamespace(ns), client.MatchingLabels{crmv1alpha1.LabelBackupReason: string(crmv1alpha1.BackupPrePromotion)})).To(Succeed())
		g.Expect(backups.Items).To(HaveLen(1))
		jobs := &batchv1.JobList{}
		g.Expect(k8s.List(ctx, jobs, client.InNamespace(ns), client.MatchingLabels{resources.LabelComponent: resources.ComponentMigration})).To(Succeed())
		g.Expect(jobs.Items).To(HaveLen(2))
	})

	t.Run("production's version is changed only by promotions", func(t *testing.T) {
		g := NewWithT(t)
		err := func() error {
			e := &crmv1alpha1.Environment{}
			if err := mallory.Get(ctx, key(ns, "production"), e); err != nil {
				return err
			}
			e.Spec.Version = "99.0-untested"
			return mallory.Update(ctx, e)
		}()
		g.Expect(err).To(HaveOccurred())
		g.Expect(err.Error()).To(ContainSubstring("change only through promotions"))
	})

	t.Run("a failed health check rolls production back", func(t *testing.T) {
		g := NewWithT(t)
		bad := &crmv1alpha1.Increment{
			ObjectMeta: metav1.ObjectMeta{Name: "sprint-2", Namespace: ns},
			Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: 2, Version: "18.2",
				AutoPromote: true},
		}
		g.Expect(k8s.Create(ctx, bad)).To(Succeed())
		g.Eventually(envVersion(ctx, ns, "test")).WithTimeout(wait).Should(Equal("18.2"))
		markRolledOut(ctx, g, ns, "test", "18.2")
		g.Eventually(incPhase(ctx, bad)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementAwaitingAcceptance))
		g.Expect(updateIncrement(ctx, po, bad, func(i *crmv1alpha1.Increment) {
			i.Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: crmv1alpha1.DecisionAccepted}
		})).To(Succeed())
		preName := resources.AgentJobName("sprint-2", "pre-production")
		pre := &crmv1alpha1.Backup{}
		g.Eventually(exists(ctx, pre, ns, preName)).WithTimeout(wait).Should(Succeed())
		g.Eventually(backupPhase(ctx, pre)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupRunning))
		g.Eventually(func(g Gomega) {
			finishJob(ctx, g, ns, pre.Status.JobName, agent.Result{Location: "s3://crm-backups/promo/production/" + preName, Size: 2048}, true)
		}).WithTimeout(wait).Should(Succeed())
		g.Eventually(envVersion(ctx, ns, "production")).WithTimeout(wait).Should(Equal("18.2"))
		// The new version never becomes Ready: past verifyTimeout (10m on the
		// operator's clock), production goes back to 18.1.
		pastVerifyDeadline(ctx, g, bad)
		g.Eventually(incPhase(ctx, bad)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementRolledBack))
		g.Expect(envVersion(ctx, ns, "production")()).To(Equal("18.1"))
		g.Expect(condition(ctx, bad, func() []metav1.Condition { return bad.Status.Conditions }, crmv1alpha1.ConditionFailed)()).To(Equal(metav1.ConditionTrue))
		g.Expect(condition(ctx, bad, func() []metav1.Condition { return bad.Status.Conditions }, crmv1alpha1.ConditionRolledBack)()).To(Equal(metav1.ConditionTrue))
		prod := &crmv1alpha1.Environment{}
		g.Expect(k8s.Get(ctx, key(ns, "production"), prod)).To(Succeed())
		g.Expect(prod.Annotations[crmv1alpha1.AnnotationIncrement]).To(Equal("sprint-1"))
	})
}
