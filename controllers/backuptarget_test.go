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
	"github.com/crmops/crm-operator/controllers/agentjob"
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

// An agent pod that cannot start (its image, its Secret) is said on the
// Backup at once and fails it after agentjob.StartDeadline, instead of the
// Job's own deadline: the agent never ran, nothing was changed.
func TestAnAgentPodThatCannotStartIsNamedAndEndsTheBackup(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("stuck", 5)
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
	b := runningBackup(ctx, g, ns, "manual-1", "test")

	// The kubelet cannot pull the agent's image.
	job := &batchv1.Job{}
	g.Expect(k8s.Get(ctx, key(ns, b.Status.JobName), job)).To(Succeed())
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-x1", Namespace: ns, Labels: job.Spec.Template.Labels}, Spec: job.Spec.Template.Spec}
	pod.Labels["batch.kubernetes.io/job-name"] = job.Name
	g.Expect(k8s.Create(ctx, pod)).To(Succeed())
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{
		Name: pod.Spec.InitContainers[0].Name, Image: pod.Spec.InitContainers[0].Image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}},
	}}}
	g.Expect(k8s.Status().Update(ctx, pod)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(b), b)).To(Succeed())
		c := meta.FindStatusCondition(b.Status.Conditions, crmv1alpha1.ConditionReady)
		g.Expect(c.Reason).To(Equal("ImagePullBackOff"))
		g.Expect(c.Message).To(ContainSubstring("pod " + pod.Name + " cannot start container " + pod.Spec.InitContainers[0].Name))
	}).WithTimeout(wait).Should(Succeed())
	g.Expect(b.Status.Phase).To(Equal(crmv1alpha1.BackupRunning), "a pod that waits may still start")

	// Still waiting past the deadline: the Backup fails, saying why.
	clockOffset.Store(int64(agentjob.StartDeadline + time.Minute))
	t.Cleanup(func() { clockOffset.Store(0) })
	g.Eventually(backupPhase(ctx, b)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupFailed))
	g.Expect(b.Status.Error).To(And(ContainSubstring("ImagePullBackOff"), ContainSubstring("the agent never ran, nothing was backed up")))
}
