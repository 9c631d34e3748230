package controllers_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/policy"
)

func TestTightenedPolicyIsReportedNotEnforcedSilently(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := newProject("tightened")
	p.Spec.Hosting = crmv1alpha1.Hosting{Region: "eu-central-1", StorageClassName: "fast-ssd"}
	createProject(ctx, t, p)
	// The namespace carries the policy for the admission policy.
	ns := &corev1.Namespace{}
	g.Eventually(func() string {
		_ = k8s.Get(ctx, key("", p.Name), ns)
		return ns.Annotations[policy.AnnotationRequireEncryption]
	}).WithTimeout(wait).Should(Equal("false"))
	env := newEnvironment(p.Name, "test", crmv1alpha1.StageTest)
	env.Spec.Storage.StorageClassName = "fast-ssd"
	g.Expect(k8s.Create(ctx, env)).To(Succeed())
	g.Eventually(condition(ctx, p, func() []metav1.Condition { return p.Status.Conditions }, crmv1alpha1.ConditionCompliant)).
		WithTimeout(wait).Should(Equal(metav1.ConditionTrue))

	// The policy is tightened: the project itself must comply (admission),
	// the existing environment on an unencrypted class is listed, not changed.
	g.Eventually(func() error {
		if err := k8s.Get(ctx, key("", p.Name), p); err != nil {
			return err
		}
		p.Spec.Hosting.StorageClassName, p.Spec.Hosting.Region = "encrypted-ssd", "eu-central-1"
		p.Spec.GDPR = &crmv1alpha1.GDPRPolicy{AllowedRegions: []string{"eu-*"}, RequireEncryptedStorage: true, EncryptedStorageClasses: []string{"encrypted-ssd"}}
		return k8s.Update(ctx, p)
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(func() string {
		_ = k8s.Get(ctx, key("", p.Name), p)
		c := meta.FindStatusCondition(p.Status.Conditions, crmv1alpha1.ConditionCompliant)
		if c == nil || c.Status != metav1.ConditionFalse {
			return ""
		}
		return c.Message
	}).WithTimeout(wait).Should(ContainSubstring(`environment test: storage class "fast-ssd" is not encrypted`))
	// New objects like it are now refused at admission.
	g.Eventually(func() error {
		e := newEnvironment(p.Name, "another", crmv1alpha1.StageTest)
		e.Spec.Storage.StorageClassName = "fast-ssd"
		return k8s.Create(ctx, e)
	}).WithTimeout(wait).Should(MatchError(ContainSubstring("gdpr.requireEncryptedStorage")))
	events := &corev1.EventList{}
	g.Eventually(func() bool {
		_ = k8s.List(ctx, events)
		for _, e := range events.Items {
			if e.Reason == "PolicyViolations" && e.InvolvedObject.Name == p.Name {
				return true
			}
		}
		return false
	}).WithTimeout(wait).Should(BeTrue(), func() string {
		var seen []string
		for _, e := range events.Items {
			seen = append(seen, e.Namespace+"/"+e.InvolvedObject.Name+":"+e.Reason)
		}
		return strings.Join(seen, " ")
	})
	g.Expect(k8s.Get(ctx, key(p.Name, "test"), env)).To(Succeed())
	g.Expect(env.Spec.Storage.StorageClassName).To(Equal("fast-ssd"), "nothing is changed silently")
	// The offender can still be changed otherwise, and deleted (its finalizer removed).
	updateEnvironment(ctx, g, env, func() { env.Spec.Version = "10.1.0" })
	g.Expect(k8s.Delete(ctx, env)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, key(p.Name, "test"), &crmv1alpha1.Environment{}))
	}).WithTimeout(wait).Should(BeTrue())
}
