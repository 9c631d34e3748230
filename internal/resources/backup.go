package resources

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// Backup is a Backup of environment env, in namespace ns, taken for
// reason; increment names the increment a pre-promotion backup precedes
// ("" for others). Every Backup the operator and the kubectl plugin create
// is built here, so that each carries the same labels: its environment
// and reason (crmv1alpha1.LabelBackupReason), and its increment, if any.
func Backup(ns, name, env string, reason crmv1alpha1.BackupReason, increment string) *crmv1alpha1.Backup {
	labels := map[string]string{crmv1alpha1.LabelEnvironment: env, crmv1alpha1.LabelBackupReason: string(reason)}
	if increment != "" {
		labels[crmv1alpha1.LabelIncrement] = increment
	}
	return &crmv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       crmv1alpha1.BackupSpec{EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: env}, Reason: reason, Increment: increment},
	}
}

// Restore is a Restore of Backup backup into environment env, in namespace
// ns, labelled with its environment. confirm is its spec.confirm: the
// environment's name, where whoever creates it may replace production's
// data without asking again (a rollback, a bootstrap, a confirmed command),
// else "". Every Restore the operator and the kubectl plugin create is
// built here.
func Restore(ns, name, backup, env, confirm string) *crmv1alpha1.Restore {
	return &crmv1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{crmv1alpha1.LabelEnvironment: env}},
		Spec: crmv1alpha1.RestoreSpec{
			BackupRef:      crmv1alpha1.LocalObjectReference{Name: backup},
			EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: env},
			Confirm:        confirm,
		},
	}
}
