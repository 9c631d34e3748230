package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/agent"
	"github.com/crmops/crm-operator/internal/resources"
)

// A backup target the agent could not reach is said before a Job is
// created: on a real node the Job's pod would never start (its Secret is
// missing) and the Backup would wait out the Job's deadline.
func TestABackupTargetThatIsNotThereIsNamed(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("targets", 5)
	p.Spec.Backup.Target.S3.SecretName = "s3-not-yet"
	g.Expect(k8s.Create(ctx, p)).To(Succeed())
	ns := p.Name
	g.Eventually(exists(ctx, &corev1.Namespace{}, "", ns)).WithTimeout(wait).Should(Succeed())
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)

	b := &crmv1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "manual-1", Namespace: ns},
		Spec: crmv1alpha1.BackupSpec{EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: "test"}}}
	g.Expect(k8s.Create(ctx, b)).To(Succeed())
	ready := func(g Gomega) *metav1.Condition {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(b), b)).To(Succeed())
		return meta.FindStatusCondition(b.Status.Conditions, crmv1alpha1.ConditionReady)
	}
	g.Eventually(func(g Gomega) {
		c := ready(g)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal("BackupCredentialsNotFound"))
		g.Expect(c.Message).To(ContainSubstring("Secret s3-not-yet does not exist in namespace targets"))
	}).WithTimeout(wait).Should(Succeed())
	g.Expect(b.Status.Phase).To(Equal(crmv1alpha1.BackupPending))
	g.Expect(k8s.Get(ctx, key(ns, resources.AgentJobName("manual-1", "backup")), &batchv1.Job{})).NotTo(Succeed(), "a Job was created without its Secret")

	// A Secret without the keys the agent reads is named too.
	incomplete := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-not-yet", Namespace: ns}, StringData: map[string]string{"AWS_ACCESS_KEY_ID": "k"}}
	g.Expect(k8s.Create(ctx, incomplete)).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(ready(g).Reason).To(Equal("BackupCredentialsInvalid")) }).WithTimeout(wait).Should(Succeed())
	g.Expect(ready(g).Message).To(ContainSubstring("has no key AWS_SECRET_ACCESS_KEY"))

	// Complete, the backup starts.
	g.Expect(k8s.Delete(ctx, incomplete)).To(Succeed())
	g.Expect(k8s.Create(ctx, s3Credentials(ns, "s3-not-yet"))).To(Succeed())
	g.Eventually(backupPhase(ctx, b)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupRunning))
	g.Expect(k8s.Get(ctx, key(ns, b.Status.JobName), &batchv1.Job{})).To(Succeed())
	g.Eventually(func(g Gomega) {
		finishJob(ctx, g, ns, b.Status.JobName, agent.Result{Location: "s3://crm-backups/targets/test/manual-1", Size: 1024}, true)
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(backupPhase(ctx, b)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupCompleted))

	// Deleted while its Secret is gone, the Backup waits for it: its stored
	// data is deleted only through the target.
	g.Expect(k8s.Delete(ctx, s3Credentials(ns, "s3-not-yet"))).To(Succeed())
	g.Expect(k8s.Delete(ctx, b)).To(Succeed())
	deleteJob := resources.AgentJobName("manual-1", "delete")
	g.Eventually(func(g Gomega) {
		events := &eventsv1.EventList{}
		g.Expect(k8s.List(ctx, events, client.InNamespace(ns))).To(Succeed())
		g.Expect(events.Items).To(ContainElement(And(HaveField("Reason", "BackupCredentialsNotFound"), HaveField("Action", "Delete"))))
	}).WithTimeout(wait).Should(Succeed())
	g.Expect(k8s.Get(ctx, key(ns, deleteJob), &batchv1.Job{})).NotTo(Succeed(), "a delete Job was created without its Secret")
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(b), b)).To(Succeed(), "the Backup went while its data is stored")
	g.Expect(k8s.Create(ctx, s3Credentials(ns, "s3-not-yet"))).To(Succeed())
	g.Eventually(exists(ctx, &batchv1.Job{}, ns, deleteJob)).WithTimeout(wait + time.Minute).Should(Succeed())
}
