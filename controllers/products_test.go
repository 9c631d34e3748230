package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
)

func appReplicas(ctx context.Context, ns, env string) func() int32 {
	return func() int32 {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key(ns, resources.AppName(env)), d); err != nil {
			return -1
		}
		return ptr.Deref(d.Spec.Replicas, -1)
	}
}

// Odoo's empty database is installed once, by a Job through the image's
// entrypoint, after the database answers and before the application
// starts; a failed installation keeps the application stopped until the
// Job is deleted, which runs it again.
func TestTheProductIsInstalledBeforeTheApplicationStarts(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := newProject("installs")
	p.Spec.Product = crmv1alpha1.Product{Name: crmv1alpha1.ProductOdoo, Version: "18.0"}
	createProject(ctx, t, p)
	ns := p.Name
	env := newEnvironment(ns, "test", crmv1alpha1.StageTest)
	g.Expect(k8s.Create(ctx, env)).To(Succeed())
	g.Eventually(exists(ctx, &appsv1.StatefulSet{}, ns, resources.DatabaseName("test"))).WithTimeout(wait).Should(Succeed())
	g.Eventually(appReplicas(ctx, ns, "test")).WithTimeout(wait).Should(BeZero())
	g.Eventually(condition(ctx, env, func() []metav1.Condition { return env.Status.Conditions }, crmv1alpha1.ConditionInitialized)).
		WithTimeout(wait).Should(Equal(metav1.ConditionFalse))
	g.Expect(meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionInitialized).Reason).To(Equal("WaitingForDatabase"))
	g.Expect(k8s.Get(ctx, key(ns, resources.InitJobName("test")), &batchv1.Job{})).NotTo(Succeed(), "the install started before the database answered")

	// The database answers: the install Job starts, the application waits.
	sts := &appsv1.StatefulSet{}
	g.Expect(k8s.Get(ctx, key(ns, resources.DatabaseName("test")), sts)).To(Succeed())
	sts.Status = appsv1.StatefulSetStatus{ObservedGeneration: sts.Generation, Replicas: 1, ReadyReplicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, CurrentReplicas: 1}
	g.Expect(k8s.Status().Update(ctx, sts)).To(Succeed())
	job := &batchv1.Job{}
	g.Eventually(exists(ctx, job, ns, resources.InitJobName("test"))).WithTimeout(wait).Should(Succeed())
	script := strings.Join(append(job.Spec.Template.Spec.Containers[0].Command, job.Spec.Template.Spec.Containers[0].Args...), " ")
	g.Expect(script).To(ContainSubstring("/entrypoint.sh odoo -d \"$ODOO_DATABASE\" -i base"))
	g.Expect(job.Spec.Template.Spec.InitContainers[0].Name).To(Equal("prepare"), "Odoo's configuration file is written first")
	g.Expect(job.Labels[resources.LabelComponent]).To(Equal(resources.ComponentInit))
	g.Expect(metav1.IsControlledBy(job, env)).To(BeTrue())
	g.Consistently(appReplicas(ctx, ns, "test")).WithTimeout(time.Second).Should(BeZero())

	// It fails: the application stays stopped, the condition says why.
	completeJob(ctx, g, ns, job.Name, false)
	g.Eventually(func() string {
		_ = k8s.Get(ctx, client.ObjectKeyFromObject(env), env)
		if c := meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionInitialized); c != nil {
			return c.Reason + ": " + c.Message
		}
		return ""
	}).WithTimeout(wait).Should(And(HavePrefix("Failed: "), ContainSubstring("delete the Job to run it again")))
	g.Expect(meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionReady).Reason).To(Equal("Initializing"))
	g.Expect(appReplicas(ctx, ns, "test")()).To(BeZero())

	// Deleted, it runs again; it succeeds and the application starts.
	g.Expect(k8s.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
	g.Eventually(func(g Gomega) {
		again := &batchv1.Job{}
		g.Expect(k8s.Get(ctx, key(ns, resources.InitJobName("test")), again)).To(Succeed())
		g.Expect(again.UID).NotTo(Equal(job.UID))
	}).WithTimeout(wait).Should(Succeed())
	completeJob(ctx, g, ns, resources.InitJobName("test"), true)
	g.Eventually(appReplicas(ctx, ns, "test")).WithTimeout(wait).Should(Equal(int32(1)))
	markUntilReady(ctx, g, ns, "test")
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(env), env)).To(Succeed())
	g.Expect(env.Status.SchemaVersion).To(Equal("18.0"))
	g.Expect(meta.IsStatusConditionTrue(env.Status.Conditions, crmv1alpha1.ConditionInitialized)).To(BeTrue())
	g.Expect(env.Status.MailURL).To(Equal("http://test-mail.installs.svc:8025/mail/"))
	mail := &appsv1.Deployment{}
	g.Eventually(exists(ctx, mail, ns, resources.MailName("test"))).WithTimeout(wait).Should(Succeed())
	g.Expect(mail.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example.com/crm-local/mailpit:v1.30.5"), "the manager's image override (suite_test.go)")
}

// An Increment that only changes the version runs the product's upgrade in
// the stage's migration slot, before the rollout; a version the product
// cannot reach in one step fails the stage without touching the environment.
func TestAVersionChangeRunsTheProductsUpgrade(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("upgrades", 5)
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
	readyEnvironment(ctx, t, p, "production", crmv1alpha1.StageProduction)

	inc := &crmv1alpha1.Increment{ObjectMeta: metav1.ObjectMeta{Name: "sprint-1", Namespace: ns},
		Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: 1, Version: "18.0-20261201"}}
	g.Expect(k8s.Create(ctx, inc)).To(Succeed())
	job := &batchv1.Job{}
	g.Eventually(exists(ctx, job, ns, resources.AgentJobName("sprint-1", "migrate-test"))).WithTimeout(wait).Should(Succeed())
	c := job.Spec.Template.Spec.Containers[0]
	g.Expect(c.Name).To(Equal("upgrade"))
	g.Expect(c.Command).To(BeNil(), "the upgrade runs through the image's entrypoint")
	g.Expect(c.Args).To(Equal([]string{"odoo", "-d", "$(ODOO_DATABASE)", "-u", "all", "--stop-after-init", "--no-http"}))
	g.Expect(c.Image).To(HaveSuffix(":18.0-20261201"))
	g.Expect(envVersion(ctx, ns, "test")()).NotTo(Equal("18.0-20261201"), "rolled out before the upgrade ran")
	g.Eventually(envVersion(ctx, ns, "test")).WithTimeout(wait).Should(Equal("18.0-20261201"))
	markRolledOut(ctx, g, ns, "test", "18.0-20261201")
	env := &crmv1alpha1.Environment{}
	g.Expect(k8s.Get(ctx, key(ns, "test"), env)).To(Succeed())
	g.Expect(env.Status.SchemaVersion).To(Equal("18.0-20261201"), "the upgrade the promotion ran is recorded, not run again")
	g.Expect(k8s.Get(ctx, key(ns, resources.InitJobName("test")), &batchv1.Job{})).To(Succeed())
	initJob := &batchv1.Job{}
	g.Expect(k8s.Get(ctx, key(ns, resources.InitJobName("test")), initJob)).To(Succeed())
	g.Expect(initJob.Annotations).To(HaveKeyWithValue("crm.crmops.io/init-version", "18.0"), "the environment ran the upgrade a second time")

	// A new series is not an upgrade Odoo makes with -u: refused, test untouched.
	jump := &crmv1alpha1.Increment{ObjectMeta: metav1.ObjectMeta{Name: "sprint-2", Namespace: ns},
		Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: 2, Version: "19.0"}}
	g.Expect(k8s.Create(ctx, jump)).To(Succeed())
	g.Eventually(incPhase(ctx, jump)).WithTimeout(wait).Should(Equal(crmv1alpha1.IncrementFailed))
	failed := meta.FindStatusCondition(jump.Status.Conditions, crmv1alpha1.ConditionFailed)
	g.Expect(failed.Reason).To(Equal("UnsupportedUpgrade"))
	g.Expect(failed.Message).To(ContainSubstring("Odoo 18.0-20261201 -> 19.0 changes the major version"))
	g.Expect(envVersion(ctx, ns, "test")()).To(Equal("18.0-20261201"))
	g.Expect(k8s.Get(ctx, key(ns, resources.AgentJobName("sprint-2", "migrate-test")), &batchv1.Job{})).NotTo(Succeed())
}

// An installation whose pod cannot start (its image cannot be pulled) is
// named on the Environment, with the image and the kubelet's reason,
// instead of "Job ... runs the installation" until the Job's deadline.
func TestAnInstallationWhoseImageCannotBePulledIsNamed(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := newProject("unpulled-install")
	p.Spec.Product = crmv1alpha1.Product{Name: crmv1alpha1.ProductOdoo, Version: "18.0"}
	createProject(ctx, t, p)
	ns := p.Name
	const image = "registry.example.com/acme/odoo:18.0-custom"
	env := newEnvironment(ns, "test", crmv1alpha1.StageTest)
	env.Spec.Image = image
	g.Expect(k8s.Create(ctx, env)).To(Succeed())
	sts := &appsv1.StatefulSet{}
	g.Eventually(exists(ctx, sts, ns, resources.DatabaseName("test"))).WithTimeout(wait).Should(Succeed())
	sts.Status = appsv1.StatefulSetStatus{ObservedGeneration: sts.Generation, Replicas: 1, ReadyReplicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, CurrentReplicas: 1}
	g.Expect(k8s.Status().Update(ctx, sts)).To(Succeed())
	g.Eventually(exists(ctx, &batchv1.Job{}, ns, resources.InitJobName("test"))).WithTimeout(wait).Should(Succeed())

	pod := imageNotPulled(ctx, g, ns, resources.InitJobName("test"), image)
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(env), env)).To(Succeed())
		c := meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionInitialized)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("ImagePullBackOff"))
		g.Expect(c.Message).To(And(ContainSubstring("the installation of odoo 18.0 has not started"), ContainSubstring("pod "+pod.Name+" cannot start container"),
			ContainSubstring("(image "+image+")"), ContainSubstring("ImagePullBackOff")))
		g.Expect(meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionReady).Message).To(Equal(c.Message), "Ready says why the application waits")
	}).WithTimeout(time.Minute).Should(Succeed())
	g.Expect(appReplicas(ctx, ns, "test")()).To(BeZero())
}
