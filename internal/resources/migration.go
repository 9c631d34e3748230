package resources

import (
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
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
	spec.InitContainers = append(spec.InitContainers, waitForDatabase(in, conn))
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

// waitForDatabase holds a Job's steps until the database accepts a
// connection from the Job's pod: a NetworkPolicy engine admits a new pod's
// address a moment after the pod starts (kube-router refused a migration's
// first connection on the real node, and a migration never retries), and
// the database may be starting too. It runs the database image's own
// client (pg_isready, mariadb-admin ping: 0 once the server answers, even
// without credentials), as the Job's user, for at most the Job's deadline.
func waitForDatabase(in *EnvironmentInput, conn crm.Connection) corev1.Container {
	db := in.Database()
	check := `pg_isready -q -h "$0" -p "$1" -U "$2"`
	if db.Engine == crmv1alpha1.DatabaseMariaDB {
		check = `mariadb-admin ping -h "$0" -P "$1" -u "$2" --protocol=tcp --connect-timeout=2 >/dev/null 2>&1`
	}
	return corev1.Container{
		Name:  "wait-for-database",
		Image: agentImageTag(in, db),
		Command: []string{"sh", "-c", "until " + check + `; do echo "waiting for the database $0:$1"; sleep 1; done`,
			conn.DatabaseHost, strconv.Itoa(int(conn.DatabasePort)), conn.DatabaseUser},
		SecurityContext: containerSecurity(true),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
	}
}
