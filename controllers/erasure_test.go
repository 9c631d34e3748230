package controllers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/controllers/agentjob"
	"github.com/crmops/crm-operator/internal/agent"
	"github.com/crmops/crm-operator/internal/resources"
)

func TestErasureRequest(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("erasures", 10)
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "production", crmv1alpha1.StageProduction)
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
	training := readyEnvironment(ctx, t, p, "training", crmv1alpha1.StageTraining)
	updateEnvironment(ctx, g, training, func() { training.Spec.Hibernate = true })
	dbReplicas := func(env string) func() int32 {
		return func() int32 {
			sts := &appsv1.StatefulSet{}
			_ = k8s.Get(ctx, key(ns, resources.DatabaseName(env)), sts)
			return ptr.Deref(sts.Spec.Replicas, -1)
		}
	}
	g.Eventually(dbReplicas("training")).WithTimeout(wait).Should(BeZero())

	// A backup of production taken before the erasure still holds the person.
	b := runningBackup(ctx, g, ns, "before-erasure", "production")
	g.Eventually(func(g Gomega) {
		finishJob(ctx, g, ns, b.Status.JobName, agent.Result{Location: "s3://crm-backups/erasures/production/before-erasure", Size: 1024}, true)
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(backupPhase(ctx, b)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupCompleted))

	const email = "Anna.Mueller@Kunde.example"
	er := &crmv1alpha1.ErasureRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "forget-anna", Namespace: ns},
		Spec: crmv1alpha1.ErasureRequestSpec{
			ProjectRef: crmv1alpha1.ProjectReference{Name: ns},
			Subject:    crmv1alpha1.ErasureSubject{Email: email, ExternalID: "ticket-4711"},
			Reason:     "Art. 17 request, ticket 4711",
		},
	}

	t.Run("a request without an address is refused", func(t *testing.T) {
		g := NewWithT(t)
		bad := er.DeepCopy()
		bad.Name, bad.Spec.Subject = "nobody", crmv1alpha1.ErasureSubject{ExternalID: "x"}
		err := k8s.Create(ctx, bad)
		g.Expect(err).To(HaveOccurred())
		g.Expect(err.Error()).To(ContainSubstring("spec.subject.email is required"))
	})

	g.Expect(k8s.Create(ctx, er)).To(Succeed())
	g.Eventually(func() string {
		_ = k8s.Get(ctx, client.ObjectKeyFromObject(er), er)
		return er.Status.SubjectHash
	}).WithTimeout(wait).ShouldNot(BeEmpty())

	t.Run("the address cannot be changed to another person", func(t *testing.T) {
		g := NewWithT(t)
		// Read afresh on each try: the controller writes the request's
		// status meanwhile, and a stale update is a conflict, not a verdict.
		g.Eventually(func() string {
			other := &crmv1alpha1.ErasureRequest{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(er), other); err != nil {
				return err.Error()
			}
			other.Spec.Subject.Email = "someone.else@kunde.example"
			if err := k8s.Update(ctx, other); err != nil {
				return err.Error()
			}
			t.Fatal("the subject's address was changed to another person")
			return ""
		}).WithTimeout(wait).Should(ContainSubstring("spec.subject.email is immutable"))
	})

	salt := &corev1.Secret{}
	g.Expect(k8s.Get(ctx, key(ns, crmv1alpha1.ErasureSaltSecretName), salt)).To(Succeed())
	g.Expect(er.Status.SubjectHash).To(Equal(agent.SubjectHash(string(salt.Data["salt"]), email)))
	g.Expect(er.Status.ExternalIDHash).To(Equal(agent.SubjectHash(string(salt.Data["salt"]), "ticket-4711")))

	t.Run("one Job per environment, carrying the hash and never the address", func(t *testing.T) {
		g := NewWithT(t)
		// The hibernated database is started for the erasure.
		g.Eventually(dbReplicas("training")).WithTimeout(wait).Should(Equal(int32(1)))
		g.Eventually(func(g Gomega) { markWorkloads(ctx, g, ns, "training") }).WithTimeout(wait).Should(Succeed())
		for _, env := range []string{"production", "test", "training"} {
			job := &batchv1.Job{}
			name := resources.AgentJobName("forget-anna-"+env, "erase")
			g.Eventually(exists(ctx, job, ns, name)).WithTimeout(wait).Should(Succeed())
			c := job.Spec.Template.Spec.Containers[0]
			g.Expect(strings.Join(c.Command, " ")).To(ContainSubstring("crm-agent erase"))
			g.Expect(strings.Join(c.Command, " ")).To(ContainSubstring("--db-host " + env + "-db"))
			g.Expect(c.Env).To(ContainElement(corev1.EnvVar{Name: "ERASE_SUBJECT_HASHES", Value: er.Status.SubjectHash}))
			raw, err := json.Marshal(job)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(strings.ToLower(string(raw))).NotTo(ContainSubstring(strings.ToLower(email)))
		}
		g.Expect(er.Status.Phase).NotTo(Equal(crmv1alpha1.ErasureCompleted))
	})

	t.Run("completion in every environment leaves only the hash", func(t *testing.T) {
		g := NewWithT(t)
		for _, env := range []string{"production", "test", "training"} {
			name := resources.AgentJobName("forget-anna-"+env, "erase")
			g.Eventually(func(g Gomega) {
				finishJob(ctx, g, ns, name, agent.Result{Location: env + "-db/crm", Size: 3}, true)
			}).WithTimeout(wait).Should(Succeed())
		}
		g.Eventually(condition(ctx, er, func() []metav1.Condition { return er.Status.Conditions }, crmv1alpha1.ConditionComplete)).
			WithTimeout(wait).Should(Equal(metav1.ConditionTrue))
		g.Expect(er.Status.Environments).To(HaveLen(3))
		for _, e := range er.Status.Environments {
			g.Expect(e.Phase).To(Equal(crmv1alpha1.ErasureCompleted), e.Name)
			g.Expect(e.Statements).To(Equal(int64(3)))
		}
		g.Eventually(func() crmv1alpha1.ErasureSubject {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(er), er)
			return er.Spec.Subject
		}).WithTimeout(wait).Should(BeZero())
		g.Expect(er.Status.SubjectHash).NotTo(BeEmpty())
		// The training database goes back to sleep.
		g.Eventually(dbReplicas("training")).WithTimeout(wait).Should(BeZero())
	})

	t.Run("a restore of the older backup re-applies the erasure before the application starts", func(t *testing.T) {
		g := NewWithT(t)
		rs := &crmv1alpha1.Restore{
			ObjectMeta: metav1.ObjectMeta{Name: "back-in-time", Namespace: ns},
			Spec: crmv1alpha1.RestoreSpec{BackupRef: crmv1alpha1.LocalObjectReference{Name: "before-erasure"},
				EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: "test"}},
		}
		g.Expect(k8s.Create(ctx, rs)).To(Succeed())
		jobName := resources.AgentJobName(rs.Name, "restore")
		job := &batchv1.Job{}
		// The kubelets report the application stopped, then the agent runs.
		g.Eventually(func(g Gomega) {
			markWorkloads(ctx, g, ns, "test")
			g.Expect(k8s.Get(ctx, key(ns, jobName), job)).To(Succeed())
		}).WithTimeout(wait).Should(Succeed())
		c := job.Spec.Template.Spec.Containers[0]
		g.Expect(c.Env).To(ContainElement(corev1.EnvVar{Name: "ERASE_SUBJECT_HASHES", Value: er.Status.SubjectHash}))
		g.Expect(c.Env).To(ContainElement(HaveField("Name", "ERASE_SALT")))
		g.Eventually(func(g Gomega) {
			finishJob(ctx, g, ns, jobName, agent.Result{Location: "s3://crm-backups/erasures/production/before-erasure", Size: 1024}, true)
		}).WithTimeout(wait).Should(Succeed())
		g.Eventually(func() crmv1alpha1.RestorePhase {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(rs), rs)
			return rs.Status.Phase
		}).WithTimeout(wait).Should(Equal(crmv1alpha1.RestoreCompleted))
		g.Expect(rs.Status.ErasuresReapplied).To(Equal(int32(1)))
		g.Expect(rs.Status.Message).To(ContainSubstring("1 erasures re-applied"))
	})

	t.Run("no log line or event carries the address", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(strings.ToLower(logs.String())).NotTo(ContainSubstring(strings.ToLower(email)))
		g.Expect(logs.String()).To(ContainSubstring(`"audit": true`))
		evs := &eventsv1.EventList{}
		g.Expect(k8s.List(ctx, evs, client.InNamespace(ns))).To(Succeed())
		reasons := map[string]bool{}
		for _, e := range evs.Items {
			g.Expect(strings.ToLower(e.Note)).NotTo(ContainSubstring(strings.ToLower(email)))
			reasons[e.Reason] = true
		}
		g.Expect(reasons).To(HaveKey("Erased"))
		g.Expect(reasons).To(HaveKey("IdentifiersRemoved"))
	})
}

// An erasure whose agent pod cannot start (its image, its Secret) says so
// on the environment's entry, and fails there after agentjob.StartDeadline,
// as a Backup or Restore does, instead of saying it erases until the Job's
// own deadline: the agent never ran, nothing was erased.
func TestAnErasureWhoseAgentCannotStartIsNamedAndEnds(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("erasure-stuck", 5)
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
	er := &crmv1alpha1.ErasureRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "forget-bob", Namespace: ns},
		Spec: crmv1alpha1.ErasureRequestSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns},
			Subject: crmv1alpha1.ErasureSubject{Email: "bob@kunde.example"}, Reason: "Art. 17 request, ticket 4712"},
	}
	g.Expect(k8s.Create(ctx, er)).To(Succeed())
	name := resources.AgentJobName("forget-bob-test", "erase")
	g.Eventually(exists(ctx, &batchv1.Job{}, ns, name)).WithTimeout(wait).Should(Succeed())

	// The kubelet cannot pull the operator's image, which carries crm-agent (suite_test.go).
	const image = "registry.example.com/crm-operator:test"
	pod := imageNotPulled(ctx, g, ns, name, image)
	entry := func(g Gomega) crmv1alpha1.EnvironmentErasure {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(er), er)).To(Succeed())
		g.Expect(er.Status.Environments).To(HaveLen(1))
		return er.Status.Environments[0]
	}
	g.Eventually(func(g Gomega) {
		e := entry(g)
		g.Expect(e.Phase).To(Equal(crmv1alpha1.ErasureRunning))
		g.Expect(e.Message).To(And(ContainSubstring("pod "+pod.Name+" cannot start container"), ContainSubstring("(image "+image+")"), ContainSubstring("ImagePullBackOff")))
	}).WithTimeout(wait).Should(Succeed())

	// Still waiting past the deadline: the erasure fails there, saying why.
	clockOffset.Store(int64(agentjob.StartDeadline + time.Minute))
	t.Cleanup(func() { clockOffset.Store(0) })
	g.Eventually(func(g Gomega) {
		e := entry(g)
		g.Expect(e.Phase).To(Equal(crmv1alpha1.ErasureFailed))
		g.Expect(e.Message).To(And(ContainSubstring("ImagePullBackOff"), ContainSubstring("the agent never ran, nothing was erased")))
	}).WithTimeout(wait).Should(Succeed())
	g.Expect(er.Status.Phase).To(Equal(crmv1alpha1.ErasureFailed))
}
