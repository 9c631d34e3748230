package resources

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/crmops/crm-operator/internal/crm"
)

// ComponentMigration labels increments' migration Jobs and their pods;
// ComponentInit the product's install and upgrade Jobs of an environment.
const (
	ComponentMigration = "migration"
	ComponentInit      = "init"
)

// InitJobName names the Job that installs the product (or upgrades it to
// the version the environment runs) outside a promotion.
func InitJobName(env string) string { return env + "-init" }

// ProductJob runs one of the product's own steps (its installation, or its
// upgrade) once in the environment's image, with the application's
// configuration and volumes, while the application is stopped.
func ProductJob(in *EnvironmentInput, name string, step crm.Run, deadline int64) *batchv1.Job {
	return stepJob(in, name, ComponentInit, nil, stepContainer("step", step, in), deadline)
}

// MigrationJob runs, in the increment's image, the product's upgrade when
// the version changes (upgrade non-nil, first) and then the increment's
// own migration (args non-empty), both through the image's entrypoint, so
// that what it sets up (database arguments, persisted configuration) is in
// place. It never retries: a migration runs once, and a failure stops the
// promotion.
func MigrationJob(in *EnvironmentInput, name string, upgrade *crm.Run, args []string, deadline int64) *batchv1.Job {
	var first []corev1.Container
	main := stepContainer("migration", crm.Run{Args: args}, in)
	switch {
	case upgrade != nil && len(args) > 0:
		first = []corev1.Container{stepContainer("upgrade", *upgrade, in)}
	case upgrade != nil:
		main = stepContainer("upgrade", *upgrade, in)
	}
	return stepJob(in, name, ComponentMigration, first, main, deadline)
}

func stepContainer(name string, step crm.Run, in *EnvironmentInput) corev1.Container {
	return corev1.Container{Name: name, Command: step.Command, Args: step.Args, Env: step.Env, Resources: appResources(in.Env)}
}

func stepJob(in *EnvironmentInput, name, component string, first []corev1.Container, main corev1.Container, deadline int64) *batchv1.Job {
	conn := connection(in)
	spec := appPodSpec(in, conn, main)
	for _, c := range first {
		c.Image = spec.Containers[0].Image
		c.VolumeMounts = spec.Containers[0].VolumeMounts
		c.SecurityContext = spec.Containers[0].SecurityContext
		c.Env = mergeEnv(ProductEnv(in, conn), c.Env)
		spec.InitContainers = append(spec.InitContainers, c)
	}
	spec.RestartPolicy = corev1.RestartPolicyNever
	spec.Affinity = besideTheApplication(in)
	// Part of the application tier for the network policies (it reaches
	// the database), but not selected by the application's Service.
	labels := componentLabels(in, component)
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
