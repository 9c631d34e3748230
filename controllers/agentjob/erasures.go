package agentjob

import (
	"context"
	"sort"

	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
)

// ErasureHashes lists the salted hashes of every erasure requested in a
// project namespace: a restore re-applies all of them, whatever the age of
// the backup, since erasing an already erased person changes nothing.
func ErasureHashes(ctx context.Context, c client.Client, ns string, product crmv1alpha1.ProductName) ([]string, error) {
	if _, ok := crm.ErasureFor(product); !ok {
		return nil, nil
	}
	list := &crmv1alpha1.ErasureRequestList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var hashes []string
	for _, er := range list.Items {
		if er.Status.SubjectHash != "" {
			hashes = append(hashes, er.Status.SubjectHash)
		}
	}
	sort.Strings(hashes)
	return hashes, nil
}

// ErasurePendingIn reports whether an erasure still has to run in env.
func ErasurePendingIn(list []crmv1alpha1.ErasureRequest, env string) bool {
	for _, er := range list {
		if er.Status.Phase == crmv1alpha1.ErasureCompleted || er.Status.SubjectHash == "" {
			continue
		}
		done := false
		for _, e := range er.Status.Environments {
			done = done || (e.Name == env && e.Phase == crmv1alpha1.ErasureCompleted)
		}
		if !done {
			return true
		}
	}
	return false
}
