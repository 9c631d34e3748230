package agentjob

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crmops/crm-operator/internal/resources"
)

// CheckBackupTarget says why an agent Job could not reach the project's
// backup target, before one is created: a pod whose Secret or claim does
// not exist never starts, and its Job waits out its deadline instead of
// failing. reason is "" when the target's objects are there. They are read
// from the API server: the cache holds only the operator's own.
func (d Deps) CheckBackupTarget(ctx context.Context, in *resources.EnvironmentInput) (reason, msg string, err error) {
	backup := in.Project.Spec.Backup
	if backup == nil {
		return "", "", nil
	}
	ns := in.Env.Namespace
	switch {
	case backup.Target.S3 != nil:
		name := backup.Target.S3.SecretName
		s := &corev1.Secret{}
		switch err := d.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); {
		case apierrors.IsNotFound(err):
			return "BackupCredentialsNotFound", fmt.Sprintf("spec.backup.target.s3.secretName of project %s: Secret %s does not exist in namespace %s", in.Project.Name, name, ns), nil
		case err != nil:
			return "", "", err
		}
		for _, k := range resources.S3CredentialKeys {
			if len(s.Data[k]) == 0 {
				return "BackupCredentialsInvalid", fmt.Sprintf("spec.backup.target.s3.secretName of project %s: Secret %s has no key %s", in.Project.Name, name, k), nil
			}
		}
	case backup.Target.Volume != nil:
		name := backup.Target.Volume.ClaimName
		switch err := d.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &corev1.PersistentVolumeClaim{}); {
		case apierrors.IsNotFound(err):
			return "BackupVolumeNotFound", fmt.Sprintf("spec.backup.target.volume.claimName of project %s: PersistentVolumeClaim %s does not exist in namespace %s", in.Project.Name, name, ns), nil
		case err != nil:
			return "", "", err
		}
	}
	return "", "", nil
}
