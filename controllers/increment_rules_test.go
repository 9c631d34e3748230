package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/agent"
	"github.com/crmops/crm-operator/internal/resources"
)

// verifiedOnTest creates an increment and plays its rollout on test until it
// awaits acceptance.
func verifiedOnTest(ctx context.Context, t *testing.T, ns, name string, sprint int32, version string, mutate func(*crmv1alpha1.Increment)) *crmv1alpha1.Increment {
	t.Helper()
	g := NewWithT(t)
	inc := &crmv1alpha1.Increment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: sprint, Version: version},
	}
	if mutate != nil {
		mutate(inc)
	}
	g.Expect(k8s.Create(ctx, inc)).To(Succeed())
	if inc.Spec.Migration != nil {
		job := resources.AgentJobName(name, "migrate-test")
		g.Eventually(exists(ctx, &batchv1.Job{}, ns, job)).WithTimeout(wait).Should(Succeed())
		g.Eventually(func(g Gomega) { completeJob(ctx, g, ns, job, true) }).WithTimeout(wait).Should(Succeed())
	}
	g.Eventually(envVersion(ctx, ns, "test")).WithTimeout(wait).Should(Equal(version))
	markRolledOut(ctx, g, ns, "test", version)
	g.Eventually(incPhase(ctx, inc)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementAwaitingAcceptance))
	return inc
}

func accept(ctx context.Context, t *testing.T, po client.Client, inc *crmv1alpha1.Increment) {
	t.Helper()
	NewWithT(t).Expect(updateIncrement(ctx, po, inc, func(i *crmv1alpha1.Increment) {
		i.Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: crmv1alpha1.DecisionAccepted}
	})).To(Succeed())
}

func finishPreBackup(ctx context.Context, g Gomega, ns, inc string) {
	pre := &crmv1alpha1.Backup{}
	name := resources.AgentJobName(inc, "pre-production")
	g.Eventually(exists(ctx, pre, ns, name)).WithTimeout(wait).Should(Succeed())
	g.Eventually(backupPhase(ctx, pre)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupRunning))
	g.Eventually(func(g Gomega) {
		finishJob(ctx, g, ns, pre.Status.JobName, agent.Result{Location: "s3://crm-backups/" + ns + "/production/" + name, Size: 1}, true)
	}).WithTimeout(wait).Should(Succeed())
}

// migratingInProduction takes an increment with a migration through test
// and acceptance to its running migration Job on production, whose name it
// returns.
func migratingInProduction(ctx context.Context, t *testing.T, po client.Client, ns, name string, sprint int32, version string) (*crmv1alpha1.Increment, string) {
	t.Helper()
	g := NewWithT(t)
	inc := verifiedOnTest(ctx, t, ns, name, sprint, version, func(i *crmv1alpha1.Increment) {
		i.Spec.AutoPromote = true
		i.Spec.Migration = &crmv1alpha1.Migration{Command: []string{"odoo", "-u", "all", "--stop-after-init"}}
	})
	accept(ctx, t, po, inc)
	finishPreBackup(ctx, g, ns, name)
	migrate := resources.AgentJobName(name, "migrate-production")
	g.Eventually(exists(ctx, &batchv1.Job{}, ns, migrate)).WithTimeout(wait).Should(Succeed())
	return inc, migrate
}

func TestPromotionRules(t *testing.T) {
	ctx := context.Background()
	p := backupProject("rules", 20)
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
	prod := readyEnvironment(ctx, t, p, "production", crmv1alpha1.StageProduction)
	po := userClient(t, "po@customer.example")

	t.Run("a rejection with a comment stops the increment", func(t *testing.T) {
		g := NewWithT(t)
		inc := verifiedOnTest(ctx, t, ns, "sprint-1", 1, "18.1", func(i *crmv1alpha1.Increment) { i.Spec.AutoPromote = true })
		g.Expect(updateIncrement(ctx, po, inc, func(i *crmv1alpha1.Increment) {
			i.Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: crmv1alpha1.DecisionRejected, Comment: "quotes lose their discount"}
		})).To(Succeed())
		g.Eventually(incPhase(ctx, inc)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementRejected))
		c := meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionAccepted)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(ContainSubstring("quotes lose their discount"))
		g.Expect(inc.Status.AcceptedBy).To(Equal("po@customer.example"))
		g.Expect(meta.IsStatusConditionTrue(inc.Status.Conditions, crmv1alpha1.ConditionFailed)).To(BeTrue(), "a pipeline waiting for Promoted must be able to stop")
		g.Consistently(envVersion(ctx, ns, "production")).WithTimeout(time.Second).Should(Equal(""))
	})

	t.Run("the maintenance window holds the promotion until it opens", func(t *testing.T) {
		g := NewWithT(t)
		// A one-hour window that opened 90 minutes ago: closed now, opens in 22.5 hours.
		opens := time.Now().UTC().Add(-90 * time.Minute)
		updateEnvironment(ctx, g, prod, func() {
			prod.Spec.MaintenanceWindow = &crmv1alpha1.MaintenanceWindow{
				Schedule: crmv1alpha1.CronSchedule(opens.Format("4 15 * * *")), Duration: "1h",
			}
		})
		inc := verifiedOnTest(ctx, t, ns, "sprint-2", 2, "18.2", func(i *crmv1alpha1.Increment) { i.Spec.AutoPromote = true })
		accept(ctx, t, po, inc)
		g.Eventually(func() string {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc)
			if c := meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionWaiting); c != nil && c.Status == metav1.ConditionTrue {
				return c.Message
			}
			return ""
		}).WithTimeout(wait).Should(ContainSubstring("maintenance window of production, which opens at " + opens.Add(24*time.Hour).Truncate(time.Minute).Format(time.RFC3339)))
		g.Consistently(envVersion(ctx, ns, "production")).WithTimeout(time.Second).Should(Equal(""))
		// The backup a rollback would restore is taken when the window
		// opens, not up to a day (or a week) before it.
		g.Expect(apierrors.IsNotFound(k8s.Get(ctx, key(ns, resources.AgentJobName("sprint-2", "pre-production")), &crmv1alpha1.Backup{}))).
			To(BeTrue(), "pre-promotion backup taken before the maintenance window opened")

		// The operator's clock reaches the window: the promotion proceeds.
		clockOffset.Store(int64(22*time.Hour + 31*time.Minute))
		t.Cleanup(func() { clockOffset.Store(0) })
		// Any change wakes the increment (its requeue is set for the real window).
		g.Expect(updateIncrement(ctx, k8s, inc, func(i *crmv1alpha1.Increment) {
			i.Annotations["wake"] = "1" // the API server's stamps stay as they are
		})).To(Succeed())
		finishPreBackup(ctx, g, ns, "sprint-2")
		g.Eventually(envVersion(ctx, ns, "production")).WithTimeout(wait).Should(Equal("18.2"))
		markRolledOut(ctx, g, ns, "production", "18.2")
		g.Eventually(incPhase(ctx, inc)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementPromoted))
		clockOffset.Store(0)
		updateEnvironment(ctx, g, prod, func() { prod.Spec.MaintenanceWindow = nil })
	})

	t.Run("sprint order: a newer accepted increment supersedes an older one", func(t *testing.T) {
		g := NewWithT(t)
		older := verifiedOnTest(ctx, t, ns, "sprint-3", 3, "18.3", nil)
		accept(ctx, t, po, older)
		newer := verifiedOnTest(ctx, t, ns, "sprint-4", 4, "18.4", func(i *crmv1alpha1.Increment) { i.Spec.AutoPromote = true })
		accept(ctx, t, po, newer)
		finishPreBackup(ctx, g, ns, "sprint-4")
		g.Eventually(envVersion(ctx, ns, "production")).WithTimeout(wait).Should(Equal("18.4"))
		markRolledOut(ctx, g, ns, "production", "18.4")
		g.Eventually(incPhase(ctx, newer)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementPromoted))

		// Promoting the older one now would replace a newer version on production.
		g.Expect(updateIncrement(ctx, k8s, older, func(i *crmv1alpha1.Increment) { i.Spec.Promote = true })).To(Succeed())
		g.Eventually(incPhase(ctx, older)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementSuperseded))
		g.Expect(meta.IsStatusConditionTrue(older.Status.Conditions, crmv1alpha1.ConditionSuperseded)).To(BeTrue())
		g.Expect(meta.IsStatusConditionTrue(older.Status.Conditions, crmv1alpha1.ConditionFailed)).To(BeTrue())
		g.Expect(envVersion(ctx, ns, "production")()).To(Equal("18.4"))
		g.Expect(k8s.Get(ctx, key(ns, resources.AgentJobName("sprint-3", "pre-production")), &crmv1alpha1.Backup{})).NotTo(Succeed())
	})

	t.Run("a manager restarted mid-promotion backs up and migrates exactly once", func(t *testing.T) {
		g := NewWithT(t)
		inc := verifiedOnTest(ctx, t, ns, "sprint-5", 5, "18.5", func(i *crmv1alpha1.Increment) {
			i.Spec.AutoPromote = true
			i.Spec.Migration = &crmv1alpha1.Migration{Command: []string{"odoo", "-u", "all", "--stop-after-init"}}
		})
		accept(ctx, t, po, inc)
		pre := &crmv1alpha1.Backup{}
		preName := resources.AgentJobName("sprint-5", "pre-production")
		g.Eventually(exists(ctx, pre, ns, preName)).WithTimeout(wait).Should(Succeed())
		g.Eventually(backupPhase(ctx, pre)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupRunning))

		// Stopped while the backup runs; the backup finishes meanwhile.
		stopManager()
		g.Eventually(func(g Gomega) {
			finishJob(ctx, g, ns, pre.Status.JobName, agent.Result{Location: "s3://x/" + preName, Size: 1}, true)
		}).WithTimeout(wait).Should(Succeed())
		g.Expect(startManager()).To(Succeed())

		migrate := resources.AgentJobName("sprint-5", "migrate-production")
		g.Eventually(exists(ctx, &batchv1.Job{}, ns, migrate)).WithTimeout(wait).Should(Succeed())
		// Stopped while the migration runs; it completes meanwhile.
		stopManager()
		g.Eventually(func(g Gomega) { completeJob(ctx, g, ns, migrate, true) }).WithTimeout(wait).Should(Succeed())
		g.Expect(startManager()).To(Succeed())

		g.Eventually(envVersion(ctx, ns, "production")).WithTimeout(wait).Should(Equal("18.5"))
		markRolledOut(ctx, g, ns, "production", "18.5")
		g.Eventually(incPhase(ctx, inc)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementPromoted))

		backups := &crmv1alpha1.BackupList{}
		g.Expect(k8s.List(ctx, backups, client.InNamespace(ns))).To(Succeed())
		n := 0
		for _, b := range backups.Items {
			if b.Spec.Increment == "sprint-5" {
				n++
			}
		}
		g.Expect(n).To(Equal(1), "pre-promotion backups of sprint-5")
		jobs := &batchv1.JobList{}
		g.Expect(k8s.List(ctx, jobs, client.InNamespace(ns), client.MatchingLabels{resources.LabelComponent: resources.ComponentMigration})).To(Succeed())
		runs := 0
		for _, j := range jobs.Items {
			if j.Labels[crmv1alpha1.LabelIncrement] == inc.Name {
				runs++
			}
		}
		g.Expect(runs).To(Equal(2), "one migration on test, one on production")
		backupJobs := &batchv1.JobList{}
		g.Expect(k8s.List(ctx, backupJobs, client.InNamespace(ns))).To(Succeed())
		agentRuns := 0
		for _, j := range backupJobs.Items {
			if j.Name == resources.AgentJobName(preName, "backup") {
				agentRuns++
			}
		}
		g.Expect(agentRuns).To(Equal(1))
	})

	t.Run("a rollback after a migration restores the pre-promotion backup when the project says so", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func() error {
			if err := k8s.Get(ctx, key("", ns), p); err != nil {
				return err
			}
			p.Spec.RestoreDatabaseOnRollback = true
			return k8s.Update(ctx, p)
		}).WithTimeout(wait).Should(Succeed())
		inc, migrate := migratingInProduction(ctx, t, po, ns, "sprint-6", 6, "18.6")
		g.Eventually(func(g Gomega) { completeJob(ctx, g, ns, migrate, true) }).WithTimeout(wait).Should(Succeed())
		g.Eventually(envVersion(ctx, ns, "production")).WithTimeout(wait).Should(Equal("18.6"))
		pastVerifyDeadline(ctx, g, inc)
		g.Expect(envVersion(ctx, ns, "production")()).To(Equal("18.5"))
		rsName := resources.AgentJobName("sprint-6", "rollback-production")
		rs := &crmv1alpha1.Restore{}
		g.Expect(k8s.Get(ctx, key(ns, rsName), rs)).To(Succeed())
		g.Expect(rs.Spec.BackupRef.Name).To(Equal(resources.AgentJobName("sprint-6", "pre-production")))
		g.Expect(rs.Spec.Confirm).To(Equal("production"))
		// RolledBack means the data is back too: not before the Restore completed.
		g.Consistently(incPhase(ctx, inc)).WithTimeout(time.Second).Should(Equal(crmv1alpha1.IncrementPromoting))
		g.Expect(meta.IsStatusConditionTrue(inc.Status.Conditions, crmv1alpha1.ConditionRolledBack)).To(BeFalse())
		completeRestore(ctx, g, ns, rsName, "production")
		g.Eventually(incPhase(ctx, inc)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementRolledBack))
		g.Expect(meta.IsStatusConditionTrue(inc.Status.Conditions, crmv1alpha1.ConditionRolledBack)).To(BeTrue())
		g.Expect(inc.Status.Stages[1].Restore).To(Equal(rsName))
		markUntilReady(ctx, g, ns, "production")
	})

	t.Run("a failed production migration restores the pre-promotion backup, and the Increment's deletion waits for it", func(t *testing.T) {
		g := NewWithT(t)
		inc, migrate := migratingInProduction(ctx, t, po, ns, "sprint-8", 8, "18.8")
		job := &batchv1.Job{}
		g.Expect(k8s.Get(ctx, key(ns, migrate), job)).To(Succeed())
		// Work on production's data belongs to production, not to the Increment:
		// deleting the Increment must not take the Job with it.
		g.Expect(metav1.IsControlledBy(job, inc)).To(BeFalse(), "the migration Job is controlled by the Increment")
		for _, ref := range job.OwnerReferences {
			g.Expect(ref.Kind).NotTo(Equal("Increment"))
		}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc)).To(Succeed())
		g.Expect(inc.Finalizers).To(ContainElement(crmv1alpha1.IncrementFinalizer))
		g.Expect(k8s.Delete(ctx, inc)).To(Succeed())
		g.Consistently(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc) }).
			WithTimeout(time.Second).Should(Succeed(), "the Increment went while its migration ran")

		g.Eventually(func(g Gomega) { completeJob(ctx, g, ns, migrate, false) }).WithTimeout(wait).Should(Succeed())
		rsName := resources.AgentJobName("sprint-8", "rollback-production")
		rs := &crmv1alpha1.Restore{}
		g.Eventually(exists(ctx, rs, ns, rsName)).WithTimeout(wait).Should(Succeed())
		g.Expect(rs.Spec.BackupRef.Name).To(Equal(resources.AgentJobName("sprint-8", "pre-production")))
		for _, ref := range rs.OwnerReferences {
			g.Expect(ref.Kind).NotTo(Equal("Increment"))
		}
		g.Expect(envVersion(ctx, ns, "production")()).To(Equal("18.5"), "production changed although its migration failed")
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc)).To(Succeed(), "the Increment went before its rollback restore finished")
		completeRestore(ctx, g, ns, rsName, "production")
		// Rolled back, restored: now the Increment may go.
		g.Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc)) }).
			WithTimeout(wait).Should(BeTrue())
		markUntilReady(ctx, g, ns, "production")
	})
	t.Run("a pre-promotion backup whose Job is deleted stops the promotion", func(t *testing.T) {
		g := NewWithT(t)
		inc := verifiedOnTest(ctx, t, ns, "sprint-7", 7, "18.8.1", func(i *crmv1alpha1.Increment) {
			i.Spec.AutoPromote = true
			i.Spec.Migration = &crmv1alpha1.Migration{Command: []string{"odoo", "-u", "all", "--stop-after-init"}}
		})
		accept(ctx, t, po, inc)
		pre := &crmv1alpha1.Backup{}
		g.Eventually(exists(ctx, pre, ns, resources.AgentJobName("sprint-7", "pre-production"))).WithTimeout(wait).Should(Succeed())
		g.Eventually(backupPhase(ctx, pre)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupRunning))
		g.Expect(k8s.Delete(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: pre.Status.JobName}},
			client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())

		g.Eventually(incPhase(ctx, inc)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementFailed))
		g.Expect(meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionBackedUp).Reason).To(Equal("BackupFailed"))
		g.Expect(backupPhase(ctx, pre)()).To(Equal(crmv1alpha1.BackupFailed))
		g.Consistently(envVersion(ctx, ns, "production")).WithTimeout(2 * time.Second).Should(Equal("18.5"))
		g.Expect(apierrors.IsNotFound(k8s.Get(ctx, key(ns, resources.AgentJobName("sprint-7", "migrate-production")), &batchv1.Job{}))).To(BeTrue())
	})

	t.Run("a build changed after its verification on test is verified again there before anything else", func(t *testing.T) {
		g := NewWithT(t)
		inc := verifiedOnTest(ctx, t, ns, "sprint-9", 9, "18.9", func(i *crmv1alpha1.Increment) {
			i.Spec.Migration = &crmv1alpha1.Migration{Command: []string{"odoo", "-u", "crm", "--stop-after-init"}}
		})
		g.Expect(inc.Status.Build).NotTo(BeNil())
		verified := inc.Status.Build.Fingerprint
		g.Expect(inc.Status.Stages[0].Build).To(Equal(verified))

		// CI pushes a rebuilt sprint under the same increment.
		g.Expect(updateIncrement(ctx, k8s, inc, func(i *crmv1alpha1.Increment) { i.Spec.Version = "18.9.1" })).To(Succeed())
		migrate := resources.AgentJobName("sprint-9", "migrate-test")
		g.Eventually(func(g Gomega) {
			job := &batchv1.Job{}
			g.Expect(k8s.Get(ctx, key(ns, migrate), job)).To(Succeed())
			g.Expect(job.Annotations[crmv1alpha1.AnnotationBuild]).NotTo(BeEmpty())
			g.Expect(job.Annotations[crmv1alpha1.AnnotationBuild]).NotTo(Equal(verified), "the old build's migration counted for the new build")
		}).WithTimeout(wait).Should(Succeed())
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc)).To(Succeed())
		g.Expect(inc.Status.Phase).NotTo(Equal(crmv1alpha1.IncrementAwaitingAcceptance), "the new build awaits acceptance unverified")
		g.Expect(envVersion(ctx, ns, "test")()).To(Equal("18.9"), "rolled out before its migration ran")
		g.Eventually(func(g Gomega) { completeJob(ctx, g, ns, migrate, true) }).WithTimeout(wait).Should(Succeed())
		g.Eventually(envVersion(ctx, ns, "test")).WithTimeout(wait).Should(Equal("18.9.1"))
		markRolledOut(ctx, g, ns, "test", "18.9.1")
		g.Eventually(incPhase(ctx, inc)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementAwaitingAcceptance))
		g.Expect(inc.Status.Restarts).To(Equal(int32(1)))
		g.Expect(inc.Status.Build.Version).To(Equal("18.9.1"))
		g.Expect(inc.Status.Stages[0].Version).To(Equal("18.9.1"))
		g.Expect(inc.Status.Stages[0].Build).To(Equal(inc.Status.Build.Fingerprint))
		g.Expect(inc.Status.Stages[0].Build).NotTo(Equal(verified))
		g.Expect(updateIncrement(ctx, po, inc, func(i *crmv1alpha1.Increment) {
			i.Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: crmv1alpha1.DecisionRejected, Comment: "not this sprint"}
		})).To(Succeed())
		g.Eventually(incPhase(ctx, inc)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementRejected))
	})

	t.Run("a paused project migrates and rolls out nothing, not even on test", func(t *testing.T) {
		g := NewWithT(t)
		setPaused := func(paused bool) {
			g.Eventually(func() error {
				if err := k8s.Get(ctx, key("", ns), p); err != nil {
					return err
				}
				p.Spec.Paused = paused
				return k8s.Update(ctx, p)
			}).WithTimeout(wait).Should(Succeed())
		}
		setPaused(true)
		t.Cleanup(func() { setPaused(false) })
		inc := &crmv1alpha1.Increment{
			ObjectMeta: metav1.ObjectMeta{Name: "sprint-10", Namespace: ns},
			Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: 10, Version: "18.10",
				Migration: &crmv1alpha1.Migration{Command: []string{"odoo", "-u", "crm", "--stop-after-init"}}},
		}
		g.Expect(k8s.Create(ctx, inc)).To(Succeed())
		migrate := resources.AgentJobName("sprint-10", "migrate-test")
		g.Eventually(condition(ctx, inc, func() []metav1.Condition { return inc.Status.Conditions }, crmv1alpha1.ConditionWaiting)).
			WithTimeout(wait).Should(Equal(metav1.ConditionTrue))
		g.Expect(meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionWaiting).Reason).To(Equal("ProjectPaused"))
		g.Consistently(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, key(ns, migrate), &batchv1.Job{})) }).
			WithTimeout(2*time.Second).Should(BeTrue(), "a paused project's increment migrated test")
		g.Expect(envVersion(ctx, ns, "test")()).NotTo(Equal("18.10"))

		setPaused(false)
		g.Eventually(exists(ctx, &batchv1.Job{}, ns, migrate)).WithTimeout(wait).Should(Succeed())
		g.Eventually(func(g Gomega) { completeJob(ctx, g, ns, migrate, true) }).WithTimeout(wait).Should(Succeed())
		g.Eventually(envVersion(ctx, ns, "test")).WithTimeout(wait).Should(Equal("18.10"))
		markRolledOut(ctx, g, ns, "test", "18.10")
		g.Eventually(incPhase(ctx, inc)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementAwaitingAcceptance))
	})
}

// Retention never prunes the pre-promotion backup of a promotion in
// flight: its rollback may have to restore it.
func TestRetentionKeepsThePrePromotionBackupOfAPromotionInFlight(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("inflight", 1)
	p.Spec.RestoreDatabaseOnRollback = true
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
	readyEnvironment(ctx, t, p, "production", crmv1alpha1.StageProduction)
	po := userClient(t, "po@customer.example")
	inc, migrate := migratingInProduction(ctx, t, po, ns, "sprint-1", 1, "18.1")

	// A newer backup of production completes while the migration runs:
	// with keepLast 1 the pre-promotion backup is the one beyond the limit.
	b := runningBackup(ctx, g, ns, "production-manual", "production")
	g.Eventually(func(g Gomega) {
		finishJob(ctx, g, ns, b.Status.JobName, agent.Result{Location: "s3://crm-backups/inflight/production/production-manual", Size: 1}, true)
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(backupPhase(ctx, b)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupCompleted))
	// Any change of production wakes its retention.
	prod := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "production"}}
	updateEnvironment(ctx, g, prod, func() {
		prod.Annotations = map[string]string{"wake": "1", crmv1alpha1.AnnotationIncrement: prod.Annotations[crmv1alpha1.AnnotationIncrement]}
	})
	pre := resources.AgentJobName("sprint-1", "pre-production")
	g.Consistently(func() error {
		bk := &crmv1alpha1.Backup{}
		if err := k8s.Get(ctx, key(ns, pre), bk); err != nil {
			return err
		}
		if bk.DeletionTimestamp != nil {
			return fmt.Errorf("Backup %s is being deleted", pre)
		}
		return nil
	}).WithTimeout(3*time.Second).Should(Succeed(), "retention pruned the backup the rollback may need")

	// The migration fails: the rollback restores that backup.
	g.Eventually(func(g Gomega) { completeJob(ctx, g, ns, migrate, false) }).WithTimeout(wait).Should(Succeed())
	rs := &crmv1alpha1.Restore{}
	g.Eventually(exists(ctx, rs, ns, resources.AgentJobName("sprint-1", "rollback-production"))).WithTimeout(wait).Should(Succeed())
	g.Expect(rs.Spec.BackupRef.Name).To(Equal(pre))
	completeRestore(ctx, g, ns, rs.Name, "production")
	g.Eventually(incPhase(ctx, inc)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementRolledBack))
}

// An increment changes nothing on a hibernated environment, nor while a
// Restore replaces its data; a Restore waits for a migration or rollout in
// flight there.
func TestPromotionsAndRestoresTakeTurns(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("turns", 10)
	createProject(ctx, t, p)
	ns := p.Name
	test := readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
	readyEnvironment(ctx, t, p, "production", crmv1alpha1.StageProduction)
	waiting := func(inc *crmv1alpha1.Increment) func() string {
		return func() string {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc)
			if c := meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionWaiting); c != nil && c.Status == metav1.ConditionTrue {
				return c.Reason
			}
			return ""
		}
	}
	withMigration := func(name string, sprint int32, version string) (*crmv1alpha1.Increment, string) {
		inc := &crmv1alpha1.Increment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: sprint, Version: version,
				Migration: &crmv1alpha1.Migration{Command: []string{"odoo", "-u", "crm", "--stop-after-init"}}},
		}
		g.Expect(k8s.Create(ctx, inc)).To(Succeed())
		return inc, resources.AgentJobName(name, "migrate-test")
	}

	// Hibernated: nothing runs there to migrate or to verify.
	updateEnvironment(ctx, g, test, func() { test.Spec.Hibernate = true })
	one, migrateOne := withMigration("sprint-1", 1, "18.1")
	g.Eventually(waiting(one)).WithTimeout(wait).Should(Equal("EnvironmentHibernated"))
	g.Consistently(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, key(ns, migrateOne), &batchv1.Job{})) }).
		WithTimeout(2*time.Second).Should(BeTrue(), "a hibernated environment was migrated")
	updateEnvironment(ctx, g, test, func() { test.Spec.Hibernate = false })
	g.Eventually(exists(ctx, &batchv1.Job{}, ns, migrateOne)).WithTimeout(wait).Should(Succeed())
	markUntilReady(ctx, g, ns, "test") // its database runs again

	// A Restore into test while its migration runs waits for the promotion.
	b := runningBackup(ctx, g, ns, "test-copy", "test")
	g.Eventually(func(g Gomega) {
		finishJob(ctx, g, ns, b.Status.JobName, agent.Result{Location: "s3://crm-backups/turns/test/test-copy", Size: 1}, true)
	}).WithTimeout(wait).Should(Succeed())
	rs := &crmv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Name: "reset-test", Namespace: ns},
		Spec: crmv1alpha1.RestoreSpec{BackupRef: crmv1alpha1.LocalObjectReference{Name: "test-copy"}, EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: "test"}}}
	g.Expect(k8s.Create(ctx, rs)).To(Succeed())
	g.Eventually(func() string {
		_ = k8s.Get(ctx, client.ObjectKeyFromObject(rs), rs)
		if c := meta.FindStatusCondition(rs.Status.Conditions, crmv1alpha1.ConditionReady); c != nil {
			return c.Reason
		}
		return ""
	}).WithTimeout(wait).Should(Equal("PromotionInProgress"))
	g.Expect(rs.Status.Phase).To(Equal(crmv1alpha1.RestorePending))
	g.Eventually(func(g Gomega) { completeJob(ctx, g, ns, migrateOne, true) }).WithTimeout(wait).Should(Succeed())
	g.Eventually(envVersion(ctx, ns, "test")).WithTimeout(wait).Should(Equal("18.1"))
	markRolledOut(ctx, g, ns, "test", "18.1")
	g.Eventually(incPhase(ctx, one)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementAwaitingAcceptance))

	// The promotion ended: the Restore runs, and a new increment waits for it.
	g.Eventually(func() crmv1alpha1.RestorePhase {
		_ = k8s.Get(ctx, client.ObjectKeyFromObject(rs), rs)
		return rs.Status.Phase
	}).WithTimeout(wait).Should(Equal(crmv1alpha1.RestoreRunning))
	two, migrateTwo := withMigration("sprint-2", 2, "18.2")
	g.Eventually(waiting(two)).WithTimeout(wait).Should(Equal("RestoreInProgress"))
	g.Expect(apierrors.IsNotFound(k8s.Get(ctx, key(ns, migrateTwo), &batchv1.Job{}))).To(BeTrue(), "migrated while a Restore replaced the data")
	completeRestore(ctx, g, ns, rs.Name, "test")
	g.Eventually(exists(ctx, &batchv1.Job{}, ns, migrateTwo)).WithTimeout(time.Minute).Should(Succeed())
}

// imageNotPulled plays the kubelet of a Job's pod that cannot pull image:
// the pod's containers before the first one that runs image ended, and that
// one waits in ImagePullBackOff. It returns the pod, created on first use.
func imageNotPulled(ctx context.Context, g Gomega, ns, jobName, image string) *corev1.Pod {
	job := &batchv1.Job{}
	g.Expect(k8s.Get(ctx, key(ns, jobName), job)).To(Succeed())
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: jobName + "-x1", Namespace: ns, Labels: job.Spec.Template.Labels,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))}},
		Spec: job.Spec.Template.Spec}
	pod.Labels[batchv1.JobNameLabel] = jobName
	if err := k8s.Create(ctx, pod); apierrors.IsAlreadyExists(err) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed())
	} else {
		g.Expect(err).NotTo(HaveOccurred())
	}
	now := metav1.Now()
	ended := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}}
	waiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending}
	stuck := false
	for _, c := range pod.Spec.InitContainers {
		state := ended
		if c.Image == image {
			state, stuck = waiting, true
		}
		pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, State: state})
		if stuck {
			break
		}
	}
	if !stuck {
		c := pod.Spec.Containers[0]
		g.Expect(c.Image).To(Equal(image), "the Job does not run image")
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: c.Name, Image: c.Image, State: waiting}}
	}
	g.Expect(k8s.Status().Update(ctx, pod)).To(Succeed())
	return pod
}

// A migration whose pod cannot start (its image cannot be pulled) is named
// on the Increment within a minute, with the image and the kubelet's
// reason, instead of "running the migration" until its Job's deadline; once
// the pod starts, the migration runs and the promotion goes on.
func TestAMigrationWhoseImageCannotBePulledIsNamed(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("unpulled", 5)
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
	const image = "registry.example.com/acme/odoo:18.1"
	inc := &crmv1alpha1.Increment{
		ObjectMeta: metav1.ObjectMeta{Name: "sprint-1", Namespace: ns},
		Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: 1, Image: image,
			Migration: &crmv1alpha1.Migration{Command: []string{"odoo", "-u", "crm", "--stop-after-init"}}},
	}
	g.Expect(k8s.Create(ctx, inc)).To(Succeed())
	migrate := resources.AgentJobName("sprint-1", "migrate-test")
	g.Eventually(exists(ctx, &batchv1.Job{}, ns, migrate)).WithTimeout(wait).Should(Succeed())

	pod := imageNotPulled(ctx, g, ns, migrate, image)
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc)).To(Succeed())
		c := meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionWaiting)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal("ImagePullBackOff"))
		g.Expect(c.Message).To(And(ContainSubstring("pod "+pod.Name+" cannot start container"), ContainSubstring("(image "+image+")"), ContainSubstring("ImagePullBackOff")))
		g.Expect(inc.Status.Stages[0].Phase).To(Equal(crmv1alpha1.StageMigrating))
		g.Expect(inc.Status.Stages[0].Message).To(And(ContainSubstring(image), ContainSubstring("ImagePullBackOff")))
		g.Expect(inc.Status.Stages[0].Message).NotTo(HavePrefix("running"))
	}).WithTimeout(time.Minute).Should(Succeed())
	g.Expect(envVersion(ctx, ns, "test")()).NotTo(Equal("18.1"), "rolled out before the migration ran")

	// The image is pushed: the pod starts, and the migration is said to run again.
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed())
		now := metav1.Now()
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: pod.Spec.Containers[0].Name, Image: image, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}}
		g.Expect(k8s.Status().Update(ctx, pod)).To(Succeed())
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(inc), inc)).To(Succeed())
		g.Expect(meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionWaiting)).To(BeNil())
		g.Expect(inc.Status.Stages[0].Message).To(Equal("running the product's upgrade, then the migration"))
	}).WithTimeout(time.Minute).Should(Succeed())
	g.Eventually(func(g Gomega) { completeJob(ctx, g, ns, migrate, true) }).WithTimeout(wait).Should(Succeed())
	g.Eventually(envVersion(ctx, ns, "test")).WithTimeout(wait).Should(Equal("18.1"))
	markRolledOut(ctx, g, ns, "test", "18.1")
	g.Eventually(incPhase(ctx, inc)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementAwaitingAcceptance))
}
