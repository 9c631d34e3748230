package resources

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// ComponentMigration labels the pods of an increment's migration Jobs.
const ComponentMigration = "migration"

// MigrationJob runs an increment's migration command in the increment's
// image, with the application's configuration (database, files), before the
// application rolls out. It never retries: a migration is run once, and a
// failure stops the promotion.
func MigrationJob(in *EnvironmentInput, name string, command []string, deadline int64) *batchv1.Job {
	conn := connection(in)
	container := corev1.Container{
		Name:      "migration",
		Command:   command,
		Resources: appResources(in.Env),
	}
	spec := appPodSpec(in, conn, container)
	spec.RestartPolicy = corev1.RestartPolicyNever
	spec.Affinity = besideTheApplication(in)
	// Part of the application tier for the network policies (it reaches
	// the database), but not selected by the application's Service.
	labels := componentLabels(in, ComponentMigration)
	return &batchv1.Job{
		TypeMeta:   typeMeta("batch/v1", "Job"),
		ObjectMeta: meta(name, in.Env.Namespace, labels),
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To(int32(0)),
			ActiveDeadlineSeconds:   ptr.To(deadline),
			TTLSecondsAfterFinished: ptr.To(int32(7 * 24 * 3600)),
			Template:                corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}
