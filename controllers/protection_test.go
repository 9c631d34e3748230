package controllers_test

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
)

// Production is protected like a protected environment of a CI system: the
// project's integrators (CI, the implementation partner) may not create,
// delete or re-point it, restore into it or delete its backups; product
// owners change only an increment's acceptance; the project's
// administrators may do all of it. Each request is made as that person, and
// the API server (admission policies crm-production-*) decides.
func TestProductionIsProtected(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("guarded", 10)
	p.Spec.ProductOwners = crmv1alpha1.Subjects{Users: []string{"po@guarded.example"}}
	p.Spec.Integrators = &crmv1alpha1.Subjects{Users: []string{"ci@guarded.example"}}
	p.Spec.Administrators = &crmv1alpha1.Subjects{Users: []string{"admin@guarded.example"}}
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "production", crmv1alpha1.StageProduction)
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
	po, ci, admin := userClient(t, "po@guarded.example"), userClient(t, "ci@guarded.example"), userClient(t, "admin@guarded.example")

	completed := func(name, env string) *crmv1alpha1.Backup {
		return completedBackup(ctx, g, ns, name, env, "s3://crm-backups/guarded/"+env+"/"+name)
	}
	prodBackup, testBackup := completed("prod-daily", "production"), completed("test-daily", "test")
	production := &crmv1alpha1.Environment{}
	g.Expect(k8s.Get(ctx, key(ns, "production"), production)).To(Succeed())
	g.Expect(prodBackup.Status.Origin).To(Equal(&crmv1alpha1.BackupOrigin{Environment: "production", UID: production.UID, Stage: crmv1alpha1.StageProduction}))
	g.Expect(testBackup.Status.Origin.Stage).To(Equal(crmv1alpha1.StageTest))

	forbidden := func(g Gomega, err error, says string) {
		g.ExpectWithOffset(1, apierrors.IsForbidden(err)).To(BeTrue(), "want Forbidden, got %v", err)
		g.ExpectWithOffset(1, err.Error()).To(ContainSubstring(says))
	}
	dryRun := client.DryRunAll
	// The roles reach the API server's authorizer a moment after the project:
	// the administrator's allowed request says they have.
	secondProduction := func() *crmv1alpha1.Environment {
		e := newEnvironment(ns, "production-2", crmv1alpha1.StageProduction)
		e.Spec.Image = "registry.example.com/mallory/odoo:backdoor"
		e.Spec.Bootstrap = &crmv1alpha1.Bootstrap{FromBackup: crmv1alpha1.BackupSource{Name: "prod-daily"}}
		return e
	}
	g.Eventually(func() error { return admin.Create(ctx, secondProduction(), dryRun) }).WithTimeout(wait).Should(Succeed())

	t.Run("1: an integrator cannot build a second production from production's backup", func(t *testing.T) {
		g := NewWithT(t)
		forbidden(g, ci.Create(ctx, secondProduction()), "spec.stage: only an administrator of project guarded (spec.administrators) may create production environment production-2; user ci@guarded.example is not one")
		// A test copy of production stays theirs to make (anonymized: the GDPR rules).
		copyEnv := newEnvironment(ns, "copy", crmv1alpha1.StageTest)
		copyEnv.Spec.Bootstrap = &crmv1alpha1.Bootstrap{FromBackup: crmv1alpha1.BackupSource{Name: "prod-daily"}, Anonymize: true}
		g.Expect(ci.Create(ctx, copyEnv, dryRun)).To(Succeed())
	})

	t.Run("3: an integrator cannot turn production's safety off, re-point or delete it", func(t *testing.T) {
		g := NewWithT(t)
		patch := func(c client.Client, body string, opts ...client.PatchOption) error {
			return c.Patch(ctx, &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "production", Namespace: ns}},
				client.RawPatch("application/merge-patch+json", []byte(body)), opts...)
		}
		forbidden(g, patch(ci, `{"spec":{"deletionPolicy":"Delete"}}`), "spec.database and spec.deletionPolicy of production environment production may be changed only by an administrator")
		forbidden(g, patch(ci, `{"spec":{"database":{"external":{"secretName":"mallory-db"}}}}`), "only by an administrator")
		forbidden(g, ci.Delete(ctx, &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "production", Namespace: ns}}),
			"production environment production may be deleted only by an administrator of project guarded")
		forbidden(g, ci.Delete(ctx, &crmv1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "prod-daily", Namespace: ns}}),
			"Backup prod-daily holds production data of production: only an administrator of project guarded")
		// What stays theirs: production's day-to-day knobs, test and its backups.
		g.Expect(patch(ci, `{"spec":{"replicas":2}}`, dryRun)).To(Succeed())
		g.Expect(ci.Delete(ctx, &crmv1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "test-daily", Namespace: ns}}, dryRun)).To(Succeed())
		g.Expect(ci.Delete(ctx, &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: ns}}, dryRun)).To(Succeed())
		// The administrator may.
		g.Expect(patch(admin, `{"spec":{"deletionPolicy":"Delete"}}`, dryRun)).To(Succeed())
		g.Expect(admin.Delete(ctx, &crmv1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "prod-daily", Namespace: ns}}, dryRun)).To(Succeed())
		g.Expect(admin.Delete(ctx, &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "production", Namespace: ns}}, dryRun)).To(Succeed())
	})

	restore := func(name, backup string) *crmv1alpha1.Restore {
		return &crmv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: crmv1alpha1.RestoreSpec{BackupRef: crmv1alpha1.LocalObjectReference{Name: backup},
				EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: "production"}, Confirm: "production"}}
	}

	t.Run("4: nothing but production's own backups is loaded into production", func(t *testing.T) {
		g := NewWithT(t)
		forbidden(g, ci.Create(ctx, restore("from-prod", "prod-daily")), "spec.confirm: only an administrator of project guarded (spec.administrators) may restore into production; user ci@guarded.example is not one")
		// Not even the administrator loads a test backup (its code and data were never accepted).
		rs := restore("from-test", "test-daily")
		g.Expect(admin.Create(ctx, rs)).To(Succeed())
		g.Eventually(func() crmv1alpha1.RestorePhase {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(rs), rs)
			return rs.Status.Phase
		}).WithTimeout(wait).Should(Equal(crmv1alpha1.RestoreFailed))
		g.Expect(rs.Status.Message).To(ContainSubstring("production environment production takes only backups of a production environment"))
		g.Expect(rs.Status.Message).To(ContainSubstring("Backup test-daily was taken of test environment test"))
		g.Expect(k8s.Get(ctx, key(ns, resources.AgentJobName(rs.Name, "restore")), &batchv1.Job{})).NotTo(Succeed())
		g.Expect(admin.Create(ctx, restore("from-prod", "prod-daily"), dryRun)).To(Succeed())
	})

	t.Run("5: a product owner changes only the acceptance; what was accepted stays as accepted", func(t *testing.T) {
		g := NewWithT(t)
		inc := &crmv1alpha1.Increment{ObjectMeta: metav1.ObjectMeta{Name: "sprint-1", Namespace: ns},
			Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: 1, Version: "18.0",
				Changes: []crmv1alpha1.Change{{ID: "CRM-1", Title: "Lead scoring", Hours: 8}}}}
		g.Expect(ci.Create(ctx, inc)).To(Succeed())
		forbidden(g, updateIncrement(ctx, po, inc, func(i *crmv1alpha1.Increment) {
			i.Spec.Version, i.Spec.Image = "", "registry.example.com/po/odoo:mine"
			i.Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: crmv1alpha1.DecisionAccepted}
		}), "spec: only the integrators of project guarded change what increment sprint-1 delivers")
		forbidden(g, updateIncrement(ctx, po, inc, func(i *crmv1alpha1.Increment) {
			i.Spec.Migration = &crmv1alpha1.Migration{Command: []string{"odoo", "shell"}}
		}), "may change only spec.acceptance")
		accept(ctx, t, po, inc)
		err := updateIncrement(ctx, ci, inc, func(i *crmv1alpha1.Increment) { i.Spec.Changes[0].Hours = 80 })
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
		g.Expect(err.Error()).To(ContainSubstring("immutable once the increment is accepted"))
		forbidden(g, ci.Delete(ctx, inc), "increment sprint-1 was accepted by its product owner")
		g.Expect(admin.Delete(ctx, inc, dryRun)).To(Succeed())
	})
}

// 2: production's retained volumes and credentials are adopted only by a
// production environment of the same name: an integrator who creates
// "production" again as a test environment gets no data and no passwords.
func TestRetainedDataIsAdoptedOnlyByItsStage(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := newProject("readopt")
	p.Spec.Integrators = &crmv1alpha1.Subjects{Users: []string{"ci@readopt.example"}}
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "production", crmv1alpha1.StageProduction)
	credentials := &corev1.Secret{}
	g.Expect(k8s.Get(ctx, key(ns, resources.CredentialsName("production")), credentials)).To(Succeed())
	g.Expect(k8s.Delete(ctx, &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "production", Namespace: ns}})).To(Succeed())
	g.Eventually(exists(ctx, &crmv1alpha1.Environment{}, ns, "production")).WithTimeout(wait).ShouldNot(Succeed())

	ci := userClient(t, "ci@readopt.example")
	g.Eventually(func() error { return ci.Create(ctx, newEnvironment(ns, "production", crmv1alpha1.StageTest)) }).WithTimeout(wait).Should(Succeed())
	impostor := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "production", Namespace: ns}}
	g.Eventually(conditionReason(ctx, impostor, func() []metav1.Condition { return impostor.Status.Conditions }, crmv1alpha1.ConditionReady)).WithTimeout(wait).Should(Equal("RetainedDataOfAnotherStage"))
	g.Expect(meta.FindStatusCondition(impostor.Status.Conditions, crmv1alpha1.ConditionReady).Message).To(ContainSubstring(
		"holds the retained data of production environment production; a test environment may not adopt it"))
	// (envtest runs no garbage collector: the deleted production's database may linger, but not as the impostor's.)
	sts := &appsv1.StatefulSet{}
	if k8s.Get(ctx, key(ns, resources.DatabaseName("production")), sts) == nil {
		g.Expect(metav1.IsControlledBy(sts, impostor)).To(BeFalse(), "a test database started on production's volume")
	}
	g.Expect(k8s.Get(ctx, key(ns, resources.CredentialsName("production")), credentials)).To(Succeed())
	g.Expect(credentials.OwnerReferences).To(BeEmpty(), "production's passwords handed to a test environment")
	events := &eventsv1.EventList{}
	g.Eventually(func() []string {
		_ = k8s.List(ctx, events, client.InNamespace(ns))
		var reasons []string
		for _, e := range events.Items {
			if e.Regarding.Name == "production" {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}).WithTimeout(wait).Should(ContainElement("RetainedDataOfAnotherStage"))

	// Production again (a cluster administrator here) takes its data back, and says so.
	g.Expect(k8s.Delete(ctx, impostor)).To(Succeed())
	g.Eventually(exists(ctx, &crmv1alpha1.Environment{}, ns, "production")).WithTimeout(wait).ShouldNot(Succeed())
	prod := newEnvironment(ns, "production", crmv1alpha1.StageProduction)
	g.Expect(k8s.Create(ctx, prod)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, resources.CredentialsName("production")), credentials)).To(Succeed())
		g.Expect(metav1.IsControlledBy(credentials, prod)).To(BeTrue())
		g.Expect(credentials.Labels).NotTo(HaveKey(crmv1alpha1.LabelRetainedFrom))
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(func() []string {
		_ = k8s.List(ctx, events, client.InNamespace(ns))
		var reasons []string
		for _, e := range events.Items {
			if e.Regarding.UID == prod.UID {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}).WithTimeout(wait).Should(ContainElement("AdoptedRetainedData"))
}

// 13: on a cluster without the admission policies (the chart's
// admissionPolicies.enabled: false) anyone who may update an Increment can
// write spec.acceptance and the accepted-by annotation: the operator asks
// the authorizer itself whether the named person may accept, and ignores
// the decision of one who may not.
func TestTheOperatorChecksTheAcceptorItself(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := newProject("unguarded")
	createProject(ctx, t, p)
	ns := p.Name
	inc := &crmv1alpha1.Increment{ObjectMeta: metav1.ObjectMeta{Name: "sprint-1", Namespace: ns},
		Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: 1, Version: "10.1.0"}}
	g.Expect(k8s.Create(ctx, inc)).To(Succeed())

	// The policies' bindings removed, as on such a cluster.
	validating := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	mutating := &admissionregistrationv1.MutatingAdmissionPolicyBinding{}
	g.Expect(k8s.Get(ctx, key("", "crm-increment-acceptance"), validating)).To(Succeed())
	g.Expect(k8s.Get(ctx, key("", "crm-increment-acceptance-identity"), mutating)).To(Succeed())
	g.Expect(k8s.Delete(ctx, validating)).To(Succeed())
	g.Expect(k8s.Delete(ctx, mutating)).To(Succeed())
	t.Cleanup(func() {
		g := NewWithT(t)
		for _, b := range []client.Object{validating, mutating} {
			b.SetResourceVersion("")
			b.SetUID("")
			g.Expect(k8s.Create(ctx, b)).To(Succeed())
		}
		// Back in force before the next test: a forged stamp is refused again.
		attempt := 0
		g.Eventually(func() error {
			attempt++
			return updateIncrement(ctx, k8s, inc, func(i *crmv1alpha1.Increment) {
				i.Annotations[crmv1alpha1.AnnotationAcceptedBy] = fmt.Sprintf("forger-%d@integrator.example", attempt)
			})
		}).WithTimeout(wait).Should(MatchError(ContainSubstring("cannot be written by clients")))
	})

	// The API server drops the bindings a moment later: a probe increment
	// whose hand-written stamp is neither refused nor overwritten says when.
	probe := &crmv1alpha1.Increment{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns},
		Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: 2, Version: "10.1.1"}}
	g.Expect(k8s.Create(ctx, probe)).To(Succeed())
	try := 0
	g.Eventually(func() bool {
		try++
		stamp := fmt.Sprintf("probe-%d", try)
		_ = updateIncrement(ctx, k8s, probe, func(i *crmv1alpha1.Increment) {
			i.Annotations = map[string]string{crmv1alpha1.AnnotationAcceptedBy: stamp}
			i.Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: crmv1alpha1.DecisionRejected, Comment: stamp}
		})
		_ = k8s.Get(ctx, client.ObjectKeyFromObject(probe), probe)
		return probe.Annotations[crmv1alpha1.AnnotationAcceptedBy] == stamp
	}).WithTimeout(wait).Should(BeTrue())

	g.Expect(updateIncrement(ctx, k8s, inc, func(i *crmv1alpha1.Increment) {
		i.Annotations = map[string]string{crmv1alpha1.AnnotationAcceptedBy: "mallory@integrator.example"}
		i.Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: crmv1alpha1.DecisionAccepted}
	})).To(Succeed())
	g.Eventually(conditionReason(ctx, inc, func() []metav1.Condition { return inc.Status.Conditions }, crmv1alpha1.ConditionAccepted)).WithTimeout(wait).Should(Equal("AcceptorNotAuthorized"))
	g.Expect(meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionAccepted).Message).To(ContainSubstring(
		"mallory@integrator.example is not allowed to accept increments of project unguarded"))
	g.Expect(inc.Status.AcceptedBy).To(BeEmpty())
}
