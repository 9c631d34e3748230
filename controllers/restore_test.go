package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/agent"
	"github.com/crmops/crm-operator/internal/resources"
)

func TestRestore(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("restores", 10)
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "production", crmv1alpha1.StageProduction)
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)

	b := runningBackup(ctx, g, ns, "prod-copy", "production")
	g.Eventually(func(g Gomega) {
		finishJob(ctx, g, ns, b.Status.JobName, agent.Result{Location: "s3://crm-backups/restores/production/prod-copy", Size: 1024}, true)
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(backupPhase(ctx, b)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupCompleted))

	restoreOf := func(name, env string) *crmv1alpha1.Restore {
		return &crmv1alpha1.Restore{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: crmv1alpha1.RestoreSpec{BackupRef: crmv1alpha1.LocalObjectReference{Name: "prod-copy"},
				EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: env}},
		}
	}
	restorePhase := func(rs *crmv1alpha1.Restore) func() crmv1alpha1.RestorePhase {
		return func() crmv1alpha1.RestorePhase {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(rs), rs)
			return rs.Status.Phase
		}
	}

	t.Run("production is refused without confirm", func(t *testing.T) {
		g := NewWithT(t)
		rs := restoreOf("oops", "production")
		g.Expect(k8s.Create(ctx, rs)).To(Succeed())
		g.Eventually(restorePhase(rs)).WithTimeout(wait).Should(Equal(crmv1alpha1.RestoreFailed))
		g.Expect(rs.Status.Message).To(ContainSubstring(`spec.confirm to "production"`))
		g.Expect(k8s.Get(ctx, key(ns, resources.AgentJobName("oops", "restore")), &batchv1.Job{})).NotTo(Succeed())
	})

	t.Run("without its target's Secret it waits, and the application keeps serving", func(t *testing.T) {
		g := NewWithT(t)
		creds := &corev1.Secret{}
		g.Expect(k8s.Get(ctx, key(ns, "backup-s3"), creds)).To(Succeed())
		g.Expect(k8s.Delete(ctx, creds)).To(Succeed())
		rs := restoreOf("no-credentials", "test")
		g.Expect(k8s.Create(ctx, rs)).To(Succeed())
		g.Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(rs), rs)).To(Succeed())
			c := meta.FindStatusCondition(rs.Status.Conditions, crmv1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal("BackupCredentialsNotFound"))
		}).WithTimeout(wait).Should(Succeed())
		g.Expect(rs.Status.Phase).To(Equal(crmv1alpha1.RestorePending))
		g.Expect(rs.Status.Message).To(ContainSubstring("Secret backup-s3 does not exist"))
		app := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, key(ns, "test-app"), app)).To(Succeed())
		g.Expect(ptr.Deref(app.Spec.Replicas, -1)).To(Equal(int32(1)), "the application stopped for a restore that cannot start")
		g.Expect(k8s.Delete(ctx, rs)).To(Succeed())
		g.Expect(k8s.Create(ctx, s3Credentials(ns, "backup-s3"))).To(Succeed())
	})

	t.Run("the application stops, the agent restores, the application starts", func(t *testing.T) {
		g := NewWithT(t)
		rs := restoreOf("copy-to-test", "test")
		g.Expect(k8s.Create(ctx, rs)).To(Succeed())
		g.Eventually(restorePhase(rs)).WithTimeout(wait).Should(Equal(crmv1alpha1.RestoreRunning))
		app := &appsv1.Deployment{}
		g.Eventually(func() int32 {
			_ = k8s.Get(ctx, key(ns, "test-app"), app)
			return ptr.Deref(app.Spec.Replicas, -1)
		}).WithTimeout(wait).Should(BeZero())
		// An application pod in its grace period (the Deployment no longer
		// counts it) may still write: the restore waits for it to end.
		lingering := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "test-app-5d8f-lingering", Namespace: ns, Finalizers: []string{"crm.crmops.io/test-grace-period"},
				Labels: map[string]string{crmv1alpha1.LabelEnvironment: "test", resources.LabelComponent: resources.ComponentApp}},
			Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
				Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1",
					SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
			},
		}
		g.Expect(k8s.Create(ctx, lingering)).To(Succeed())
		g.Expect(k8s.Delete(ctx, lingering)).To(Succeed())
		g.Eventually(func(g Gomega) { markWorkloads(ctx, g, ns, "test") }).WithTimeout(wait).Should(Succeed())

		jobName := resources.AgentJobName("copy-to-test", "restore")
		g.Consistently(exists(ctx, &batchv1.Job{}, ns, jobName)).WithTimeout(5*time.Second).ShouldNot(Succeed(), "the restore started while an application pod was still ending")
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(rs), rs)).To(Succeed())
		g.Expect(rs.Status.Message).To(Equal("waiting for pod test-app-5d8f-lingering to end"))
		// Once its containers have ended (the kubelet reports the pod Failed,
		// seconds before the pod is removed) it writes nothing: the restore
		// starts without waiting for the removal.
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(lingering), lingering)).To(Succeed())
		lingering.Status.Phase = corev1.PodFailed
		g.Expect(k8s.Status().Update(ctx, lingering)).To(Succeed())
		g.Eventually(exists(ctx, &batchv1.Job{}, ns, jobName)).WithTimeout(5 * time.Second).Should(Succeed())
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(lingering), lingering)).To(Succeed())
		lingering.Finalizers = nil
		g.Expect(k8s.Update(ctx, lingering)).To(Succeed())
		job := &batchv1.Job{}
		g.Expect(k8s.Get(ctx, key(ns, jobName), job)).To(Succeed())
		g.Expect(strings.Join(job.Spec.Template.Spec.Containers[0].Command, " ")).To(HavePrefix("/agent/crm-agent restore --name prod-copy"))
		// The backup of production is restored into test's own database.
		g.Expect(strings.Join(job.Spec.Template.Spec.Containers[0].Command, " ")).To(ContainSubstring("--db-host test-db"))
		// From where production's backups are stored (a real S3 server
		// showed the restore reading under test's prefix, finding nothing).
		g.Expect(strings.Join(job.Spec.Template.Spec.Containers[0].Command, " ")).To(ContainSubstring("--s3-prefix restores/production "))

		// The agent's exit ends the restore: the application's downtime waits
		// neither for the pod's phase nor for the Job controller's verdict.
		g.Eventually(func(g Gomega) {
			agentPod(ctx, g, ns, jobName, agent.Result{Location: "s3://crm-backups/restores/production/prod-copy", Size: 1024}, true, corev1.PodRunning)
		}).WithTimeout(wait).Should(Succeed())
		g.Eventually(restorePhase(rs)).WithTimeout(5 * time.Second).Should(Equal(crmv1alpha1.RestoreCompleted))
		g.Eventually(func() int32 {
			_ = k8s.Get(ctx, key(ns, "test-app"), app)
			return ptr.Deref(app.Spec.Replicas, -1)
		}).WithTimeout(wait).Should(Equal(int32(1)))
	})

	t.Run("a copy of production restored into test is anonymized when the GDPR policy says so", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func() error {
			if err := k8s.Get(ctx, key("", ns), p); err != nil {
				return err
			}
			p.Spec.GDPR = &crmv1alpha1.GDPRPolicy{AnonymizeNonProduction: true}
			return k8s.Update(ctx, p)
		}).WithTimeout(wait).Should(Succeed())
		t.Cleanup(func() {
			g.Eventually(func() error {
				if err := k8s.Get(ctx, key("", ns), p); err != nil {
					return err
				}
				p.Spec.GDPR = nil
				return k8s.Update(ctx, p)
			}).WithTimeout(wait).Should(Succeed())
		})
		rs := restoreOf("copy-to-test-gdpr", "test")
		g.Expect(k8s.Create(ctx, rs)).To(Succeed())
		g.Eventually(restorePhase(rs)).WithTimeout(wait).Should(Equal(crmv1alpha1.RestoreRunning))
		jobName := resources.AgentJobName(rs.Name, "restore")
		g.Eventually(func(g Gomega) {
			markWorkloads(ctx, g, ns, "test")
			g.Expect(k8s.Get(ctx, key(ns, jobName), &batchv1.Job{})).To(Succeed())
		}).WithTimeout(wait).WithPolling(300 * time.Millisecond).Should(Succeed())
		job := &batchv1.Job{}
		g.Expect(k8s.Get(ctx, key(ns, jobName), job)).To(Succeed())
		g.Expect(job.Spec.Template.Spec.Containers[0].Command).To(ContainElement("--anonymize"),
			"production data restored into test without anonymization")
		g.Eventually(func(g Gomega) {
			finishJob(ctx, g, ns, jobName, agent.Result{Location: "s3://crm-backups/restores/production/prod-copy", Size: 1024}, true)
		}).WithTimeout(wait).Should(Succeed())
		g.Eventually(restorePhase(rs)).WithTimeout(wait).Should(Equal(crmv1alpha1.RestoreCompleted))
		g.Expect(rs.Status.Anonymized).To(BeTrue())
		g.Expect(rs.Status.Message).To(ContainSubstring("anonymized"))
		markUntilReady(ctx, g, ns, "test")
	})

	t.Run("a new environment is bootstrapped from a backup (disaster recovery)", func(t *testing.T) {
		g := NewWithT(t)
		env := newEnvironment(ns, "recovered", crmv1alpha1.StageProduction)
		env.Spec.Bootstrap = &crmv1alpha1.Bootstrap{FromBackup: crmv1alpha1.BackupSource{Name: "prod-copy"}}
		g.Expect(k8s.Create(ctx, env)).To(Succeed())
		rs := &crmv1alpha1.Restore{}
		g.Eventually(exists(ctx, rs, ns, resources.BootstrapRestoreName("recovered"))).WithTimeout(wait).Should(Succeed())
		g.Expect(rs.Spec.Confirm).To(Equal("recovered"))
		g.Expect(metav1.IsControlledBy(rs, env)).To(BeTrue())
		// The application does not start on an empty database.
		app := &appsv1.Deployment{}
		g.Eventually(exists(ctx, app, ns, "recovered-app")).WithTimeout(wait).Should(Succeed())
		g.Expect(ptr.Deref(app.Spec.Replicas, -1)).To(BeZero())
		g.Eventually(func(g Gomega) { markWorkloads(ctx, g, ns, "recovered") }).WithTimeout(wait).Should(Succeed())

		jobName := resources.AgentJobName(rs.Name, "restore")
		g.Eventually(exists(ctx, &batchv1.Job{}, ns, jobName)).WithTimeout(wait).Should(Succeed())
		g.Eventually(func(g Gomega) {
			finishJob(ctx, g, ns, jobName, agent.Result{Location: "s3://crm-backups/restores/production/prod-copy", Size: 1024}, true)
		}).WithTimeout(wait).Should(Succeed())
		g.Eventually(condition(ctx, env, func() []metav1.Condition { return env.Status.Conditions }, crmv1alpha1.ConditionBootstrapped)).
			WithTimeout(wait).Should(Equal(metav1.ConditionTrue))
		// The product's install step (idempotent on a restored database)
		// runs before the application starts.
		g.Eventually(func(g Gomega) int32 {
			markWorkloads(ctx, g, ns, "recovered")
			_ = k8s.Get(ctx, key(ns, "recovered-app"), app)
			return ptr.Deref(app.Spec.Replicas, -1)
		}).WithTimeout(wait).Should(Equal(int32(1)))
		g.Eventually(func(g Gomega) { markWorkloads(ctx, g, ns, "recovered") }).WithTimeout(wait).Should(Succeed())
		g.Eventually(condition(ctx, env, func() []metav1.Condition { return env.Status.Conditions }, crmv1alpha1.ConditionReady)).
			WithTimeout(wait).Should(Equal(metav1.ConditionTrue))
	})

	t.Run("a copy of production is anonymized before the application starts", func(t *testing.T) {
		g := NewWithT(t)
		env := newEnvironment(ns, "copy", crmv1alpha1.StageTest)
		env.Spec.Bootstrap = &crmv1alpha1.Bootstrap{FromBackup: crmv1alpha1.BackupSource{Name: "prod-copy"}, Anonymize: true}
		g.Expect(k8s.Create(ctx, env)).To(Succeed())
		rs := &crmv1alpha1.Restore{}
		g.Eventually(exists(ctx, rs, ns, resources.BootstrapRestoreName("copy"))).WithTimeout(wait).Should(Succeed())
		g.Eventually(func(g Gomega) { markWorkloads(ctx, g, ns, "copy") }).WithTimeout(wait).Should(Succeed())
		restoreJob := resources.AgentJobName(rs.Name, "restore")
		g.Eventually(exists(ctx, &batchv1.Job{}, ns, restoreJob)).WithTimeout(wait).Should(Succeed())

		// Anonymized inside the load: nothing raw is ever committed, so no
		// backup taken in between can capture production's personal data.
		job := &batchv1.Job{}
		g.Expect(k8s.Get(ctx, key(ns, restoreJob), job)).To(Succeed())
		g.Expect(job.Spec.Template.Spec.Containers[0].Command).To(ContainElement("--anonymize"), "a bootstrap copy of production loaded raw")
		g.Expect(k8s.Get(ctx, key(ns, resources.AgentJobName("copy", "anonymize")), &batchv1.Job{})).NotTo(Succeed(), "a separate anonymize step after a raw load")
		app := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, key(ns, "copy-app"), app)).To(Succeed())
		g.Expect(ptr.Deref(app.Spec.Replicas, -1)).To(BeZero(), "the application must not see the copy before it is anonymized")
		g.Eventually(func(g Gomega) {
			finishJob(ctx, g, ns, restoreJob, agent.Result{Location: "s3://crm-backups/restores/production/prod-copy", Size: 1024}, true)
		}).WithTimeout(wait).Should(Succeed())
		g.Eventually(condition(ctx, env, func() []metav1.Condition { return env.Status.Conditions }, crmv1alpha1.ConditionAnonymized)).
			WithTimeout(wait).Should(Equal(metav1.ConditionTrue))
		g.Eventually(func(g Gomega) int32 {
			markWorkloads(ctx, g, ns, "copy")
			_ = k8s.Get(ctx, key(ns, "copy-app"), app)
			return ptr.Deref(app.Spec.Replicas, -1)
		}).WithTimeout(wait).Should(Equal(int32(1)))
		markUntilReady(ctx, g, ns, "copy")
	})

	t.Run("a Restore named like the bootstrap's loads production's backup anonymized all the same", func(t *testing.T) {
		// Whether a restore anonymizes follows from the environment's
		// bootstrap policy, never from the Restore's name: one named
		// <env>-bootstrap must not pass production's personal data through.
		g := NewWithT(t)
		old := &crmv1alpha1.Restore{}
		g.Expect(k8s.Get(ctx, key(ns, resources.BootstrapRestoreName("copy")), old)).To(Succeed())
		g.Expect(k8s.Delete(ctx, old)).To(Succeed())
		g.Eventually(exists(ctx, &crmv1alpha1.Restore{}, ns, old.Name)).WithTimeout(wait).ShouldNot(Succeed())
		// envtest runs no garbage collector: play it for the Restore's Job.
		g.Expect(client.IgnoreNotFound(k8s.Delete(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: resources.AgentJobName(old.Name, "restore"), Namespace: ns}},
			client.PropagationPolicy(metav1.DeletePropagationBackground)))).To(Succeed())
		g.Eventually(exists(ctx, &batchv1.Job{}, ns, resources.AgentJobName(old.Name, "restore"))).WithTimeout(wait).ShouldNot(Succeed())
		rs := restoreOf(old.Name, "copy")
		g.Expect(k8s.Create(ctx, rs)).To(Succeed())
		job := &batchv1.Job{}
		g.Eventually(func(g Gomega) {
			markWorkloads(ctx, g, ns, "copy")
			g.Expect(k8s.Get(ctx, key(ns, resources.AgentJobName(rs.Name, "restore")), job)).To(Succeed())
		}).WithTimeout(wait).WithPolling(300 * time.Millisecond).Should(Succeed())
		g.Expect(job.Spec.Template.Spec.Containers[0].Command).To(ContainElement("--anonymize"), "production's backup loaded raw under the bootstrap's name")
	})
}

// 9: a restore that failed after it had begun to replace the data (the agent
// says so: a load in place, the files) leaves the application stopped,
// saying why, until a later restore into the environment completes.
func TestAnApplicationDoesNotStartOnAPartialRestore(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("halfway", 10)
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
	completedBackup(ctx, g, ns, "nightly", "test", "s3://crm-backups/halfway/test/nightly")

	replicas := func() int32 {
		app := &appsv1.Deployment{}
		_ = k8s.Get(ctx, key(ns, "test-app"), app)
		return ptr.Deref(app.Spec.Replicas, -1)
	}
	restore := func(name string, res agent.Result, ok bool) *crmv1alpha1.Restore {
		rs := &crmv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: crmv1alpha1.RestoreSpec{BackupRef: crmv1alpha1.LocalObjectReference{Name: "nightly"}, EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: "test"}}}
		g.Expect(k8s.Create(ctx, rs)).To(Succeed())
		job := resources.AgentJobName(name, "restore")
		g.Eventually(func(g Gomega) {
			markWorkloads(ctx, g, ns, "test")
			g.Expect(k8s.Get(ctx, key(ns, job), &batchv1.Job{})).To(Succeed())
		}).WithTimeout(wait).WithPolling(300 * time.Millisecond).Should(Succeed())
		g.Eventually(func(g Gomega) { finishJob(ctx, g, ns, job, res, ok) }).WithTimeout(wait).Should(Succeed())
		g.Eventually(func() bool {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(rs), rs)
			return resources.RestoreFinished(rs.Status.Phase)
		}).WithTimeout(wait).Should(BeTrue())
		return rs
	}

	rs := restore("half", agent.Result{Error: "restoring the database: mariadb: exit status 1: ERROR 2013: Lost connection", Partial: true}, false)
	g.Expect(rs.Status.Phase).To(Equal(crmv1alpha1.RestoreFailed))
	g.Expect(rs.Status.PartialData).To(BeTrue())
	g.Expect(meta.FindStatusCondition(rs.Status.Conditions, crmv1alpha1.ConditionReady).Reason).To(Equal("FailedHalfWay"))
	env := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: ns}}
	g.Eventually(conditionReason(ctx, env, func() []metav1.Condition { return env.Status.Conditions }, crmv1alpha1.ConditionReady)).WithTimeout(wait).Should(Equal("RestoreFailedHalfWay"))
	g.Expect(meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionReady).Message).To(ContainSubstring("Restore half failed half-way"))
	g.Consistently(replicas).WithTimeout(3*time.Second).Should(BeZero(), "the application started on a partial restore")

	// A restore that fails before it changed anything says nothing of the kind.
	clean := restore("clean-failure", agent.Result{Error: "nothing restored: object database.sql.zst is corrupt"}, false)
	g.Expect(clean.Status.PartialData).To(BeFalse())
	g.Consistently(replicas).WithTimeout(2*time.Second).Should(BeZero(), "the partial data is still there")

	restore("whole", agent.Result{Location: "s3://crm-backups/halfway/test/nightly", Size: 1024}, true)
	g.Eventually(replicas).WithTimeout(wait).Should(Equal(int32(1)))
}

// 10: a restore whose agent was killed (it reports nothing) may have been
// half-way: the application stays stopped, and on MariaDB, whose staged
// load keeps its copy beside the database, a Job of the operator's drops
// that copy, as the server's root, before the restore is reported.
func TestAKilledRestoreIsPartialAndItsMariaDBCopyIsDropped(t *testing.T) {
	for _, tc := range []struct {
		name    string
		product crmv1alpha1.Product
		clean   bool
	}{
		{"killedmaria", crmv1alpha1.Product{Name: crmv1alpha1.ProductEspoCRM, Version: "10.0.3"}, true},
		{"killedpg", crmv1alpha1.Product{Name: crmv1alpha1.ProductOdoo, Version: "18.0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			p := backupProject(tc.name, 10)
			p.Spec.Product = tc.product
			createProject(ctx, t, p)
			ns := p.Name
			readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
			completedBackup(ctx, g, ns, "nightly", "test", "s3://crm-backups/"+ns+"/test/nightly")

			rs := &crmv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Name: "killed", Namespace: ns},
				Spec: crmv1alpha1.RestoreSpec{BackupRef: crmv1alpha1.LocalObjectReference{Name: "nightly"}, EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: "test"}}}
			g.Expect(k8s.Create(ctx, rs)).To(Succeed())
			g.Eventually(func(g Gomega) {
				markWorkloads(ctx, g, ns, "test")
				g.Expect(k8s.Get(ctx, key(ns, "killed-restore"), &batchv1.Job{})).To(Succeed())
			}).WithTimeout(wait).WithPolling(300 * time.Millisecond).Should(Succeed())
			// Three pods SIGKILLed: the Job fails, no pod carries a result.
			g.Eventually(func(g Gomega) { completeJob(ctx, g, ns, "killed-restore", false) }).WithTimeout(wait).Should(Succeed())

			if tc.clean {
				clean := &batchv1.Job{}
				g.Eventually(func() error { return k8s.Get(ctx, key(ns, "killed-clean"), clean) }).WithTimeout(wait).Should(Succeed())
				g.Expect(clean.Spec.Template.Spec.Containers[0].Command).To(ContainElements("clean", "--db-admin-user", "root"))
				g.Expect(metav1.IsControlledBy(clean, rs)).To(BeTrue(), "the clean Job is not the Restore's")
				g.Consistently(func() crmv1alpha1.RestorePhase {
					_ = k8s.Get(ctx, client.ObjectKeyFromObject(rs), rs)
					return rs.Status.Phase
				}).WithTimeout(2*time.Second).Should(Equal(crmv1alpha1.RestoreRunning), "the restore was reported before the copy beside the database was dropped")
				g.Eventually(func(g Gomega) {
					finishJob(ctx, g, ns, "killed-clean", agent.Result{Location: "test-db/crm"}, true)
				}).WithTimeout(wait).Should(Succeed())
			}
			g.Eventually(func() crmv1alpha1.RestorePhase {
				_ = k8s.Get(ctx, client.ObjectKeyFromObject(rs), rs)
				return rs.Status.Phase
			}).WithTimeout(wait).Should(Equal(crmv1alpha1.RestoreFailed))
			g.Expect(rs.Status.PartialData).To(BeTrue(), "a killed restore may have replaced part of the data")
			g.Expect(meta.FindStatusCondition(rs.Status.Conditions, crmv1alpha1.ConditionReady).Reason).To(Equal("FailedHalfWay"))
			if tc.clean {
				g.Expect(rs.Status.Message).To(ContainSubstring("what the killed load left beside the database was dropped"))
			} else {
				g.Expect(k8s.Get(ctx, key(ns, "killed-clean"), &batchv1.Job{})).NotTo(Succeed(), "PostgreSQL's load leaves nothing beside the database")
			}
			env := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: ns}}
			g.Eventually(conditionReason(ctx, env, func() []metav1.Condition { return env.Status.Conditions }, crmv1alpha1.ConditionReady)).WithTimeout(wait).Should(Equal("RestoreFailedHalfWay"))
		})
	}
}
