package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/resources"
)

const wait = 45 * time.Second // generous: Eventually returns as soon as the condition holds

func key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

func exists(ctx context.Context, obj client.Object, ns, name string) func() error {
	return func() error { return k8s.Get(ctx, key(ns, name), obj) }
}

// createProject creates p and waits for its namespace, with the Secret of
// its S3 backup target, as an ops team would create it.
func createProject(ctx context.Context, t *testing.T, p *crmv1alpha1.ImplementationProject) {
	t.Helper()
	g := NewWithT(t)
	g.Expect(k8s.Create(ctx, p)).To(Succeed())
	g.Eventually(exists(ctx, &corev1.Namespace{}, "", p.Name)).WithTimeout(wait).Should(Succeed())
	if b := p.Spec.Backup; b != nil && b.Target.S3 != nil {
		g.Expect(k8s.Create(ctx, s3Credentials(p.Name, b.Target.S3.SecretName))).To(Succeed())
	}
}

func s3Credentials(ns, name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		StringData: map[string]string{"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret"}}
}

func newEnvironment(project, name string, stage crmv1alpha1.Stage) *crmv1alpha1.Environment {
	return &crmv1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: project},
		Spec:       crmv1alpha1.EnvironmentSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: project}, Stage: stage},
	}
}

// markWorkloads plays the kube-controller-manager and kubelets, which envtest
// does not run: every workload of the environment reports its replicas as
// rolled out and ready. A heartbeat condition makes each report a change, so
// that every report wakes the operator, as real status updates do.
func markWorkloads(ctx context.Context, g Gomega, ns, env string) {
	deps := &appsv1.DeploymentList{}
	g.Expect(k8s.List(ctx, deps, client.InNamespace(ns), client.MatchingLabels{crmv1alpha1.LabelEnvironment: env})).To(Succeed())
	g.Expect(deps.Items).NotTo(BeEmpty())
	for _, d := range deps.Items {
		n := ptr.Deref(d.Spec.Replicas, 1)
		now := metav1.Now()
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
				LastUpdateTime: now, LastTransitionTime: now}}}
		g.Expect(k8s.Status().Update(ctx, &d)).To(Succeed())
	}
	sts := &appsv1.StatefulSet{}
	g.Expect(k8s.Get(ctx, key(ns, resources.DatabaseName(env)), sts)).To(Succeed())
	n := ptr.Deref(sts.Spec.Replicas, 1)
	sts.Status = appsv1.StatefulSetStatus{ObservedGeneration: sts.Generation, Replicas: n, ReadyReplicas: n, UpdatedReplicas: n, AvailableReplicas: n, CurrentReplicas: n,
		Conditions: []appsv1.StatefulSetCondition{{Type: "Heartbeat", Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}}
	g.Expect(k8s.Status().Update(ctx, sts)).To(Succeed())
	// The product's install or upgrade Job, once the database answers, succeeds.
	job := &batchv1.Job{}
	if err := k8s.Get(ctx, key(ns, resources.InitJobName(env)), job); err == nil && len(job.Status.Conditions) == 0 {
		completeJob(ctx, g, ns, job.Name, true)
	}
}

// updateEnvironment changes env's spec, retrying on conflicts with the
// operator's own writes.
func updateEnvironment(ctx context.Context, g Gomega, env *crmv1alpha1.Environment, change func()) {
	g.Eventually(func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(env), env); err != nil {
			return err
		}
		change()
		return k8s.Update(ctx, env)
	}).WithTimeout(wait).Should(Succeed())
}

// markUntilReady reports the environment's workloads ready until the
// environment is Ready: a rollout the operator applies after one marking
// needs another, as the kubelets would report it.
func markUntilReady(ctx context.Context, g Gomega, ns, name string) {
	g.Eventually(func(g Gomega) {
		markWorkloads(ctx, g, ns, name)
		e := &crmv1alpha1.Environment{}
		g.Expect(k8s.Get(ctx, key(ns, name), e)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(e.Status.Conditions, crmv1alpha1.ConditionReady)).To(BeTrue())
	}).WithTimeout(wait).WithPolling(300 * time.Millisecond).Should(Succeed())
}

// conditionReason returns a function Eventually polls for the reason of obj's condition typ.
func conditionReason(ctx context.Context, obj client.Object, conds func() []metav1.Condition, typ string) func() string {
	return func() string {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return "missing"
		}
		if c := meta.FindStatusCondition(conds(), typ); c != nil {
			return c.Reason
		}
		return "absent"
	}
}

func condition(ctx context.Context, obj client.Object, conds func() []metav1.Condition, typ string) func() metav1.ConditionStatus {
	return func() metav1.ConditionStatus {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return "missing"
		}
		c := meta.FindStatusCondition(conds(), typ)
		if c == nil {
			return "absent"
		}
		return c.Status
	}
}

// reconciles reads controller-runtime's reconcile counter of a controller.
func reconciles(g Gomega, controller string) float64 {
	v, _ := metricValue(g, "controller_runtime_reconcile_total", map[string]string{"controller": controller})
	return v
}

func TestProjectProvisionsItsNamespace(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cpu := resource.MustParse("8")
	p := newProject("provisioned")
	p.Spec.Integrators = &crmv1alpha1.Subjects{Groups: []string{"integrators"}}
	p.Spec.Quota = &crmv1alpha1.ProjectQuota{CPU: &cpu}
	createProject(ctx, t, p)

	ns := &corev1.Namespace{}
	g.Expect(k8s.Get(ctx, key("", p.Name), ns)).To(Succeed())
	g.Expect(ns.Labels).To(HaveKeyWithValue(crmv1alpha1.LabelProject, p.Name))
	g.Expect(ns.Labels).To(HaveKeyWithValue("pod-security.kubernetes.io/enforce", "restricted"))
	g.Expect(metav1.IsControlledBy(ns, p)).To(BeTrue())

	quota := &corev1.ResourceQuota{}
	g.Eventually(exists(ctx, quota, p.Name, resources.ProjectQuotaName)).WithTimeout(wait).Should(Succeed())
	g.Expect(quota.Spec.Hard[corev1.ResourceRequestsCPU]).To(Equal(cpu))
	g.Eventually(exists(ctx, &corev1.LimitRange{}, p.Name, resources.ProjectLimitRangeName)).WithTimeout(wait).Should(Succeed())
	g.Eventually(exists(ctx, &networkingv1.NetworkPolicy{}, p.Name, resources.DefaultDenyPolicyName)).WithTimeout(wait).Should(Succeed())
	po := &rbacv1.RoleBinding{}
	g.Eventually(exists(ctx, po, p.Name, resources.ProductOwnerRoleName)).WithTimeout(wait).Should(Succeed())
	g.Expect(po.Subjects).To(ContainElement(HaveField("Name", "po@customer.example")))
	g.Eventually(exists(ctx, &rbacv1.Role{}, p.Name, resources.IntegratorRoleName)).WithTimeout(wait).Should(Succeed())

	g.Eventually(condition(ctx, p, func() []metav1.Condition { return p.Status.Conditions }, crmv1alpha1.ConditionReady)).
		WithTimeout(wait).Should(Equal(metav1.ConditionFalse))
	g.Expect(meta.FindStatusCondition(p.Status.Conditions, crmv1alpha1.ConditionReady).Reason).To(Equal("NoEnvironments"))

	// Removing the quota removes the ResourceQuota.
	g.Expect(k8s.Get(ctx, key("", p.Name), p)).To(Succeed())
	p.Spec.Quota = nil
	g.Expect(k8s.Update(ctx, p)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, key(p.Name, resources.ProjectQuotaName), &corev1.ResourceQuota{}))
	}).WithTimeout(wait).Should(BeTrue())
}

func TestEnvironmentLifecycle(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := newProject("lifecycle")
	p.Spec.Hosting = crmv1alpha1.Hosting{Mode: crmv1alpha1.HostingCloud, Region: "eu-central-1", Domain: "crm.example.net"}
	createProject(ctx, t, p)
	env := newEnvironment(p.Name, "test", crmv1alpha1.StageTest)
	g.Expect(k8s.Create(ctx, env)).To(Succeed())
	ns := p.Name

	// Children: credentials, database, application and EspoCRM's components, ingress, policies.
	secret := &corev1.Secret{}
	g.Eventually(exists(ctx, secret, ns, resources.CredentialsName("test"))).WithTimeout(wait).Should(Succeed())
	for _, name := range []string{"test-app", "test-daemon", "test-websocket"} {
		g.Eventually(exists(ctx, &appsv1.Deployment{}, ns, name)).WithTimeout(wait).Should(Succeed())
	}
	g.Eventually(exists(ctx, &appsv1.StatefulSet{}, ns, "test-db")).WithTimeout(wait).Should(Succeed())
	g.Eventually(exists(ctx, &corev1.PersistentVolumeClaim{}, ns, "test-db-data")).WithTimeout(wait).Should(Succeed())
	g.Eventually(exists(ctx, &corev1.PersistentVolumeClaim{}, ns, "test-files")).WithTimeout(wait).Should(Succeed())
	g.Eventually(exists(ctx, &networkingv1.Ingress{}, ns, "test")).WithTimeout(wait).Should(Succeed())
	g.Eventually(exists(ctx, &networkingv1.NetworkPolicy{}, ns, "test-db")).WithTimeout(wait).Should(Succeed())
	for _, obj := range []client.Object{secret} {
		g.Expect(metav1.IsControlledBy(obj, env)).To(BeTrue())
	}

	g.Eventually(condition(ctx, env, func() []metav1.Condition { return env.Status.Conditions }, crmv1alpha1.ConditionReady)).
		WithTimeout(wait).Should(Equal(metav1.ConditionFalse))
	g.Expect(env.Status.Phase).To(Equal(crmv1alpha1.EnvironmentProvisioning))

	markUntilReady(ctx, g, ns, "test")
	g.Eventually(condition(ctx, env, func() []metav1.Condition { return env.Status.Conditions }, crmv1alpha1.ConditionReady)).
		WithTimeout(wait).Should(Equal(metav1.ConditionTrue))
	g.Expect(env.Status.Phase).To(Equal(crmv1alpha1.EnvironmentReady))
	g.Expect(env.Status.URL).To(Equal("http://test.lifecycle.crm.example.net"))
	g.Expect(env.Status.Version).To(Equal("10.0.3"))
	g.Expect(env.Status.SchemaVersion).To(Equal("10.0.3"), "EspoCRM's installation ran before the application started")
	g.Expect(env.Status.MailURL).To(Equal("http://test.lifecycle.crm.example.net/mail/"))
	g.Expect(env.Status.ObservedGeneration).To(Equal(env.Generation))
	g.Eventually(condition(ctx, p, func() []metav1.Condition { return p.Status.Conditions }, crmv1alpha1.ConditionReady)).
		WithTimeout(wait).Should(Equal(metav1.ConditionTrue))
	g.Expect(p.Status.Environments).To(ConsistOf(HaveField("Phase", crmv1alpha1.EnvironmentReady)))

	t.Run("a reconcile with nothing to change sends no write", func(t *testing.T) {
		g := NewWithT(t)
		// Let earlier reconciles (queued while the test marked workloads) finish.
		g.Eventually(func(g Gomega) {
			n := writes.Load()
			g.Consistently(writes.Load).WithTimeout(time.Second).WithPolling(100 * time.Millisecond).Should(Equal(n))
		}).WithTimeout(wait).Should(Succeed())
		before, log := writes.Load(), len(written.String())
		runs := reconciles(g, "environment")
		// A label on a child wakes the reconciler; nothing it owns changed.
		// (An annotation would not do: it bumps a Deployment's generation.)
		d := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, key(ns, "test-app"), d)).To(Succeed())
		d.Labels["touched-by"] = "test"
		g.Expect(k8s.Update(ctx, d)).To(Succeed())
		g.Eventually(func() float64 { return reconciles(g, "environment") }).WithTimeout(wait).Should(BeNumerically(">", runs))
		g.Expect(writes.Load()-before).To(BeZero(), "writes during a reconcile that found nothing to change:\n%s", written.String()[log:])
	})

	t.Run("drift is restored", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(k8s.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "test-app"}})).To(Succeed())
		g.Eventually(exists(ctx, &corev1.Service{}, ns, "test-app")).WithTimeout(wait).Should(Succeed())

		d := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, key(ns, "test-app"), d)).To(Succeed())
		d.Spec.Replicas = ptr.To(int32(5))
		g.Expect(k8s.Update(ctx, d)).To(Succeed())
		g.Eventually(func() int32 {
			_ = k8s.Get(ctx, key(ns, "test-app"), d)
			return ptr.Deref(d.Spec.Replicas, -1)
		}).WithTimeout(wait).Should(Equal(int32(1)))
	})

	t.Run("hibernate and wake", func(t *testing.T) {
		g := NewWithT(t)
		updateEnvironment(ctx, g, env, func() { env.Spec.Hibernate = true })
		g.Eventually(func() int32 {
			s := &appsv1.StatefulSet{}
			_ = k8s.Get(ctx, key(ns, "test-db"), s)
			return ptr.Deref(s.Spec.Replicas, -1)
		}).WithTimeout(wait).Should(BeZero())
		g.Eventually(func() int32 {
			d := &appsv1.Deployment{}
			_ = k8s.Get(ctx, key(ns, "test-app"), d)
			return ptr.Deref(d.Spec.Replicas, -1)
		}).WithTimeout(wait).Should(BeZero())
		g.Eventually(func(g Gomega) { markWorkloads(ctx, g, ns, "test") }).WithTimeout(wait).Should(Succeed())
		g.Eventually(func() crmv1alpha1.EnvironmentPhase {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(env), env)
			return env.Status.Phase
		}).WithTimeout(wait).Should(Equal(crmv1alpha1.EnvironmentHibernated))
		g.Expect(exists(ctx, &corev1.PersistentVolumeClaim{}, ns, "test-db-data")()).To(Succeed(), "hibernation must keep the data")

		updateEnvironment(ctx, g, env, func() { env.Spec.Hibernate = false })
		g.Eventually(func() int32 {
			d := &appsv1.Deployment{}
			_ = k8s.Get(ctx, key(ns, "test-app"), d)
			return ptr.Deref(d.Spec.Replicas, -1)
		}).WithTimeout(wait).Should(Equal(int32(1)))
		markUntilReady(ctx, g, ns, "test")
	})

	t.Run("a new version rolls a test environment", func(t *testing.T) {
		g := NewWithT(t)
		updateEnvironment(ctx, g, env, func() { env.Spec.Version = "10.1.0" })
		g.Eventually(func() string {
			d := &appsv1.Deployment{}
			_ = k8s.Get(ctx, key(ns, "test-app"), d)
			return d.Spec.Template.Spec.Containers[0].Image
		}).WithTimeout(wait).Should(HaveSuffix(":10.1.0"))
		// Reconciled at the new generation, the environment still runs
		// 10.0.3: the Deployment has not reported the rollout. A Deployment
		// read from the cache at its older generation must never make the
		// new version Ready (promotions would skip verification).
		g.Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(env), env)).To(Succeed())
			g.Expect(env.Status.ObservedGeneration).To(Equal(env.Generation))
		}).WithTimeout(wait).Should(Succeed())
		g.Expect(env.Status.Version).To(Equal("10.0.3"))
		g.Expect(meta.IsStatusConditionTrue(env.Status.Conditions, crmv1alpha1.ConditionReady)).To(BeFalse())
		markUntilReady(ctx, g, ns, "test")
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(env), env)).To(Succeed())
		g.Expect(env.Status.Version).To(Equal("10.1.0"))
	})

	t.Run("credentials never appear in logs, events or status", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(k8s.Get(ctx, key(ns, resources.CredentialsName("test")), secret)).To(Succeed())
		g.Expect(secret.Data).To(HaveLen(6))
		g.Expect(secret.Data).To(HaveKey("mail-password"), "the mail catcher shares the CRM admin's password")
		events := &corev1.EventList{}
		g.Expect(k8s.List(ctx, events, client.InNamespace(ns))).To(Succeed())
		g.Expect(events.Items).NotTo(BeEmpty(), "the operator records events")
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(env), env)).To(Succeed())
		status := fmt.Sprintf("%+v", env.Status)
		for k, v := range secret.Data {
			g.Expect(len(v)).To(BeNumerically(">=", 32), k)
			g.Expect(logs.String()).NotTo(ContainSubstring(string(v)), "secret %s in the operator log", k)
			g.Expect(status).NotTo(ContainSubstring(string(v)), "secret %s in status", k)
			for _, e := range events.Items {
				g.Expect(e.Message).NotTo(ContainSubstring(string(v)), "secret %s in an event", k)
			}
		}
	})
}

func TestDeletionPolicy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := newProject("deletion")
	createProject(ctx, t, p)
	ns := p.Name
	prod := newEnvironment(ns, "production", crmv1alpha1.StageProduction) // Retain by default
	scratch := newEnvironment(ns, "scratch", crmv1alpha1.StageTest)       // Delete by default
	g.Expect(k8s.Create(ctx, prod)).To(Succeed())
	g.Expect(k8s.Create(ctx, scratch)).To(Succeed())
	for _, env := range []string{"production", "scratch"} {
		g.Eventually(exists(ctx, &corev1.PersistentVolumeClaim{}, ns, resources.DataClaimName(env))).WithTimeout(wait).Should(Succeed())
		g.Eventually(exists(ctx, &corev1.Secret{}, ns, resources.CredentialsName(env))).WithTimeout(wait).Should(Succeed())
		g.Eventually(func() []string {
			e := &crmv1alpha1.Environment{}
			_ = k8s.Get(ctx, key(ns, env), e)
			return e.Finalizers
		}).WithTimeout(wait).Should(ContainElement(crmv1alpha1.EnvironmentFinalizer))
	}

	// The project cannot go while production's data is retained in its namespace.
	g.Expect(k8s.Delete(ctx, p)).To(Succeed())
	g.Eventually(func() string {
		_ = k8s.Get(ctx, key("", p.Name), p)
		if c := meta.FindStatusCondition(p.Status.Conditions, crmv1alpha1.ConditionReady); c != nil {
			return c.Reason
		}
		return ""
	}).WithTimeout(wait).Should(Equal("DeletionBlocked"))
	g.Expect(meta.FindStatusCondition(p.Status.Conditions, crmv1alpha1.ConditionReady).Message).To(ContainSubstring("production"))

	// Production's data claim is bound to a volume (as a provisioner would
	// bind it) whose reclaim policy would delete the data with the claim.
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "deletion-production-data"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/crm-test/production"}},
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: resources.DataClaimName("production")},
		},
	}
	g.Expect(k8s.Create(ctx, pv)).To(Succeed())
	g.Eventually(func() error {
		pvc := &corev1.PersistentVolumeClaim{}
		if err := k8s.Get(ctx, key(ns, resources.DataClaimName("production")), pvc); err != nil {
			return err
		}
		pvc.Spec.VolumeName = pv.Name
		return k8s.Update(ctx, pvc)
	}).WithTimeout(wait).Should(Succeed())

	g.Expect(k8s.Delete(ctx, prod)).To(Succeed())
	g.Expect(k8s.Delete(ctx, scratch)).To(Succeed())
	for _, env := range []string{"production", "scratch"} {
		g.Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, key(ns, env), &crmv1alpha1.Environment{}))
		}).WithTimeout(wait).Should(BeTrue())
	}

	// Retain: volumes and credentials stay, without owner, labelled for finding them.
	for _, obj := range []client.Object{&corev1.PersistentVolumeClaim{}, &corev1.Secret{}} {
		name := resources.DataClaimName("production")
		if _, ok := obj.(*corev1.Secret); ok {
			name = resources.CredentialsName("production")
		}
		g.Expect(k8s.Get(ctx, key(ns, name), obj)).To(Succeed())
		g.Expect(obj.GetOwnerReferences()).To(BeEmpty())
		g.Expect(obj.GetLabels()).To(HaveKeyWithValue(crmv1alpha1.LabelRetainedFrom, "production"))
		g.Expect(obj.GetLabels()).To(HaveKeyWithValue(crmv1alpha1.LabelRetainedStage, "production"))
		g.Expect(obj.GetDeletionTimestamp()).To(BeNil())
	}
	// Delete: they are deleted (a claim may wait on kubernetes.io/pvc-protection).
	g.Eventually(func() bool {
		pvc := &corev1.PersistentVolumeClaim{}
		err := k8s.Get(ctx, key(ns, resources.DataClaimName("scratch")), pvc)
		return apierrors.IsNotFound(err) || pvc.DeletionTimestamp != nil
	}).WithTimeout(wait).Should(BeTrue())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, key(ns, resources.CredentialsName("scratch")), &corev1.Secret{}))
	}).WithTimeout(wait).Should(BeTrue())

	// The retained claim's volume outlives the claim (and the namespace).
	g.Expect(k8s.Get(ctx, key("", pv.Name), pv)).To(Succeed())
	g.Expect(pv.Spec.PersistentVolumeReclaimPolicy).To(Equal(corev1.PersistentVolumeReclaimRetain))
	g.Expect(pv.Labels).To(HaveKeyWithValue(crmv1alpha1.LabelRetainedProject, ns))
	g.Expect(pv.Labels).To(HaveKeyWithValue(crmv1alpha1.LabelRetainedFrom, "production"))
	g.Expect(pv.Annotations).To(HaveKeyWithValue(crmv1alpha1.AnnotationRetainedClaim, ns+"/"+resources.DataClaimName("production")))

	// With no retained environment left, the project goes; its namespace,
	// which holds the retained claims, is released from it and stays.
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, key("", p.Name), &crmv1alpha1.ImplementationProject{}))
	}).WithTimeout(wait).Should(BeTrue())
	namespace := &corev1.Namespace{}
	g.Expect(k8s.Get(ctx, key("", ns), namespace)).To(Succeed())
	g.Expect(namespace.OwnerReferences).To(BeEmpty(), "the garbage collector would delete the namespace with the retained data")
	g.Expect(namespace.Labels).To(HaveKeyWithValue(crmv1alpha1.LabelRetainedData, "true"))
}

// customProject is a project of the custom product, whose image installs
// itself: its application starts at once, without an init Job.
func customProject(name string) *crmv1alpha1.ImplementationProject {
	p := newProject(name)
	p.Spec.Product = crmv1alpha1.Product{Name: crmv1alpha1.ProductCustom, Version: "1.0.0", Image: "registry.example.com/crm/app",
		DatabaseEngine: crmv1alpha1.DatabasePostgreSQL}
	return p
}

// A pod that will not run without a change outside it (an image the node
// cannot pull, no node to place it) is named on the environment's
// conditions, and looked at again without any event: on a real cluster the
// database and application would otherwise say "0/1 ready" for ever.
func TestAPodThatCannotRunIsNamed(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := customProject("podtrouble")
	createProject(ctx, t, p)
	env := newEnvironment(p.Name, "test", crmv1alpha1.StageTest)
	g.Expect(k8s.Create(ctx, env)).To(Succeed())
	g.Eventually(exists(ctx, &appsv1.StatefulSet{}, p.Name, "test-db")).WithTimeout(wait).Should(Succeed())

	// What the StatefulSet and ReplicaSet controllers and the kubelet would
	// make and report; envtest runs none of them.
	pod := func(name, component string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Name, Labels: map[string]string{
				crmv1alpha1.LabelEnvironment: "test", resources.LabelComponent: component}},
			Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
				Containers: []corev1.Container{{Name: component, Image: "registry.example.com/" + component + ":1",
					SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
			},
		}
	}
	db := pod("test-db-0", resources.ComponentDatabase)
	g.Expect(k8s.Create(ctx, db)).To(Succeed())
	db.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "database", Image: db.Spec.Containers[0].Image, State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "registry.example.com/database:1"`}}}}
	g.Expect(k8s.Status().Update(ctx, db)).To(Succeed())
	app := pod("test-app-7d4b9-x2x8z", resources.ComponentApp)
	g.Expect(k8s.Create(ctx, app)).To(Succeed())
	app.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: "0/3 nodes are available: 3 Insufficient memory."}}
	g.Expect(k8s.Status().Update(ctx, app)).To(Succeed())

	message := func(typ string) func() string {
		return func() string {
			e := &crmv1alpha1.Environment{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(env), e); err != nil {
				return err.Error()
			}
			if c := meta.FindStatusCondition(e.Status.Conditions, typ); c != nil {
				return c.Message
			}
			return ""
		}
	}
	// Pods are read once readiness has been missing for kube.PodCheck (30 s),
	// and again every PodCheck: nothing the operator watches changed.
	g.Eventually(message(crmv1alpha1.ConditionDatabaseReady)).WithTimeout(2 * wait).Should(ContainSubstring(
		`pod test-db-0: container database: ImagePullBackOff: Back-off pulling image "registry.example.com/database:1"`))
	g.Eventually(message(crmv1alpha1.ConditionApplicationReady)).WithTimeout(2 * wait).Should(ContainSubstring(
		"pod test-app-7d4b9-x2x8z cannot be scheduled: 0/3 nodes are available: 3 Insufficient memory."))
	g.Expect(message(crmv1alpha1.ConditionReady)()).To(ContainSubstring("ImagePullBackOff"), "Ready names the database's trouble first")
}

// A promotion records its increment in an annotation; an increment that
// ships the image already running (a migration-only sprint) changes
// nothing else, and the environment must still record it, or the
// increment's verification waits for ever (found on a real node).
func TestAnIncrementWithoutARolloutIsRecorded(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := newProject("samebuild")
	createProject(ctx, t, p)
	env := newEnvironment(p.Name, "test", crmv1alpha1.StageTest)
	g.Expect(k8s.Create(ctx, env)).To(Succeed())
	markUntilReady(ctx, g, p.Name, "test")
	updateEnvironment(ctx, g, env, func() {
		if env.Annotations == nil {
			env.Annotations = map[string]string{}
		}
		env.Annotations[crmv1alpha1.AnnotationIncrement] = "sprint-2"
	})
	g.Eventually(func() string {
		e := &crmv1alpha1.Environment{}
		_ = k8s.Get(ctx, client.ObjectKeyFromObject(env), e)
		return e.Status.CurrentIncrement
	}).WithTimeout(wait).Should(Equal("sprint-2"))
}

// A child holding a field the operator no longer sets loses it: here the
// application's DNS rule as the operator's previous release applied it,
// restricted to pods (which left names unresolved where DNS runs on the
// node). What remains desired is a subset of the stored object, so only
// the digest of the desired state tells the apply is due.
func TestAFieldTheOperatorStopsSettingIsRemoved(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := customProject("dropped")
	createProject(ctx, t, p)
	g.Expect(k8s.Create(ctx, newEnvironment(p.Name, "test", crmv1alpha1.StageTest))).To(Succeed())
	np := &networkingv1.NetworkPolicy{}
	g.Eventually(exists(ctx, np, p.Name, "test-app")).WithTimeout(wait).Should(Succeed())

	dnsPeers := func() []networkingv1.NetworkPolicyPeer {
		if err := k8s.Get(ctx, key(p.Name, "test-app"), np); err != nil {
			return nil
		}
		for _, rule := range np.Spec.Egress {
			if len(rule.Ports) > 0 && rule.Ports[0].Port.IntValue() == 53 {
				return rule.To
			}
		}
		return nil
	}
	g.Expect(dnsPeers()).To(BeEmpty())
	old := np.DeepCopy()
	old.ManagedFields, old.ResourceVersion, old.Annotations = nil, "", nil
	old.TypeMeta = metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"}
	for i, rule := range old.Spec.Egress {
		if len(rule.Ports) > 0 && rule.Ports[0].Port.IntValue() == 53 {
			old.Spec.Egress[i].To = []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}
		}
	}
	g.Expect(k8s.Patch(ctx, old, client.Apply, client.FieldOwner(kube.FieldOwner), client.ForceOwnership)).To(Succeed()) //nolint:staticcheck // SSA of a typed object, as the operator's release before
	g.Expect(dnsPeers()).NotTo(BeEmpty())
	g.Eventually(dnsPeers).WithTimeout(wait).Should(BeEmpty(), "the previous release's DNS peers are still there")
}

// A database keeps the server version it was created with: a release of the
// operator with a newer default would otherwise start the old data
// directory under a new major version, which PostgreSQL refuses.
func TestADatabaseKeepsTheVersionItWasCreatedWith(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := newProject("dbversion") // EspoCRM: MariaDB
	createProject(ctx, t, p)

	// What a release whose default was MariaDB 11.4 left behind: the
	// database StatefulSet of "legacy", and an environment status without
	// the version.
	profile, err := crm.For(p.Spec.Product)
	g.Expect(err).NotTo(HaveOccurred())
	older := newEnvironment(p.Name, "legacy", crmv1alpha1.StageTest)
	older.Status.DatabaseVersion = "11.4"
	desired, _ := resources.EnvironmentObjects(&resources.EnvironmentInput{Project: p, Env: older, Profile: profile, Version: profile.DefaultVersion})
	for _, obj := range desired {
		if sts, ok := obj.(*appsv1.StatefulSet); ok && sts.Name == resources.DatabaseName("legacy") {
			g.Expect(sts.Spec.Template.Spec.Containers[0].Image).To(Equal("mariadb:11.4"))
			g.Expect(k8s.Create(ctx, sts)).To(Succeed())
		}
	}
	g.Expect(k8s.Create(ctx, newEnvironment(p.Name, "legacy", crmv1alpha1.StageTest))).To(Succeed())
	g.Expect(k8s.Create(ctx, newEnvironment(p.Name, "fresh", crmv1alpha1.StageTest))).To(Succeed())

	for name, want := range map[string]string{"legacy": "11.4", "fresh": "11.8"} {
		env := &crmv1alpha1.Environment{}
		g.Eventually(func() string {
			_ = k8s.Get(ctx, key(p.Name, name), env)
			return env.Status.DatabaseVersion
		}).WithTimeout(wait).Should(Equal(want), name)
		sts := &appsv1.StatefulSet{}
		g.Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, key(p.Name, resources.DatabaseName(name)), sts)).To(Succeed())
			g.Expect(metav1.IsControlledBy(sts, env)).To(BeTrue(), "the environment owns its database")
			g.Expect(sts.Spec.Template.Spec.Containers[0].Image).To(Equal("mariadb:" + want))
		}).WithTimeout(wait).Should(Succeed(), name)
	}
}
