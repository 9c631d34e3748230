package resources

import (
	"fmt"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
)

// ComponentAgent labels the pods of backup, restore and delete Jobs.
const ComponentAgent = "agent"

// AgentPath is where the operator image keeps the crm-agent binary.
const AgentPath = "/crm-agent"

// AgentJobInput is everything an agent Job depends on.
type AgentJobInput struct {
	*EnvironmentInput
	// Command is backup, restore, verify, delete, anonymize, erase or clean.
	Command string
	// JobName and BackupName (the prefix of the backup's objects).
	JobName, BackupName string
	// BackupEnvironment is the environment the backup was taken of: its
	// objects are stored under that environment's prefix, which a restore
	// into another environment (a copy of production into test) reads.
	// Empty: the Job's environment.
	BackupEnvironment string
	// Increment recorded in the manifest.
	Increment string
	// AgentImage holds crm-agent at AgentPath (the operator's image).
	AgentImage string
	// AgentImageVolume mounts AgentImage as an image volume instead of
	// copying crm-agent out of it in an init container: one container start
	// less per Job. It needs Kubernetes 1.35 or later (ImageVolume on by
	// default) and a runtime that mounts image volumes executable
	// (containerd 2.1 or later).
	AgentImageVolume bool
	// ErasureHashes are the salted hashes of the people to erase (erase), or
	// to erase again once the data is loaded (restore); the salt comes from
	// the project's erasure Secret.
	ErasureHashes []string
	// Anonymize (restore): pseudonymize the copy before the restore reports
	// success (a copy of production into another environment).
	Anonymize bool
}

// databaseOnly commands work on the database alone: no backup target.
func databaseOnly(command string) bool {
	return command == "anonymize" || command == "erase" || command == "clean"
}

// AgentJobName names the Job of an agent command on an object, within the
// 63 characters a Job's pods may carry in labels.
func AgentJobName(object, command string) string {
	name := object + "-" + command
	if len(name) > 63 {
		name = fmt.Sprintf("%s-%s", object[:63-len(command)-1], command)
	}
	return name
}

// AgentJob runs crm-agent in the database image itself, so that pg_dump or
// mariadb-dump match the server's version: an init container copies the
// agent from the operator image into a shared emptyDir.
func AgentJob(in AgentJobInput) (*batchv1.Job, error) {
	backup := in.Project.Spec.Backup
	if backup == nil && !databaseOnly(in.Command) {
		return nil, fmt.Errorf("project %s has no spec.backup target", in.Project.Name)
	}
	env := in.Env
	stored := in.BackupEnvironment
	if stored == "" {
		stored = env.Name
	}
	db := in.Database()
	conn := connection(in.EnvironmentInput)

	args := []string{in.Command, "--name", in.BackupName,
		"--engine", string(in.Profile.Engine),
		"--db-host", conn.DatabaseHost, "--db-port", strconv.Itoa(int(conn.DatabasePort)),
		"--db-name", conn.DatabaseName, "--db-user", conn.DatabaseUser,
		"--product", string(in.Project.Spec.Product.Name), "--product-version", in.Version,
		"--environment", env.Name,
	}
	if in.Increment != "" {
		args = append(args, "--increment", in.Increment)
	}
	if in.Anonymize && in.Command == "restore" {
		args = append(args, "--anonymize")
	}
	pwd := conn.DatabasePassword
	envVars := []corev1.EnvVar{
		{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &pwd}},
		{Name: "TMPDIR", Value: "/scratch"},
		{Name: "HOME", Value: "/scratch"},
	}
	if (in.Command == "restore" || in.Command == "erase" || in.Command == "clean") && in.Profile.Engine == crmv1alpha1.DatabaseMariaDB && in.External == nil {
		// The server's root creates the staging database a MariaDB restore
		// loads beside the environment's and swaps in once verified (the
		// official image creates root@'%' with MARIADB_ROOT_PASSWORD:
		// MariaDB/mariadb-docker@1b6429b 10.11/docker-entrypoint.sh); an
		// erasure drops what a killed restore left there before it erases,
		// and clean, after a restore whose agent was killed, drops only that.
		args = append(args, "--db-admin-user", "root")
		envVars = append(envVars, corev1.EnvVar{Name: "DB_ADMIN_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: CredentialsName(env.Name)}, Key: crm.SecretDatabaseRootPass,
		}}})
	}
	agentVolume := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	if in.AgentImageVolume {
		agentVolume = corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: in.AgentImage, PullPolicy: corev1.PullIfNotPresent}}
	}
	vols := []corev1.Volume{
		{Name: "agent", VolumeSource: agentVolume},
		// What a restore verifies before touching the target: the files,
		// and a dump loaded in place (a streamed dump needs none).
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	mounts := []corev1.VolumeMount{{Name: "agent", MountPath: "/agent", ReadOnly: true}, {Name: "scratch", MountPath: "/scratch"}}

	if in.Profile.HasFiles() && (in.Command == "backup" || in.Command == "restore") {
		// Only these read or write the files; a delete of the backup of an
		// environment that is gone must not wait for its claim.
		vols = append(vols, claimVolume("files", FilesClaimName(env.Name)))
		mounts = append(mounts, corev1.VolumeMount{Name: "files", MountPath: "/files", ReadOnly: in.Command == "backup"})
		args = append(args, "--files-dir", "/files")
	}
	if len(in.ErasureHashes) > 0 {
		// Hashes only: the operator never puts an e-mail address in a Job.
		envVars = append(envVars,
			corev1.EnvVar{Name: "ERASE_SUBJECT_HASHES", Value: strings.Join(in.ErasureHashes, ",")},
			corev1.EnvVar{Name: "ERASE_SALT", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: crmv1alpha1.ErasureSaltSecretName}, Key: "salt",
			}}})
	}
	switch {
	case databaseOnly(in.Command):
	case backup.Target.S3 != nil:
		s3 := backup.Target.S3
		prefix := s3.Prefix
		if prefix == "" {
			prefix = in.Project.Name
		}
		args = append(args, "--s3-endpoint", s3.Endpoint, "--s3-bucket", s3.Bucket, "--s3-prefix", prefix+"/"+stored)
		if s3.Region != "" {
			args = append(args, "--s3-region", s3.Region)
		}
		for _, k := range S3CredentialKeys {
			envVars = append(envVars, corev1.EnvVar{Name: k, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: s3.SecretName}, Key: k,
			}}})
		}
	case backup.Target.Volume != nil:
		vols = append(vols, claimVolume("backups", backup.Target.Volume.ClaimName))
		mounts = append(mounts, corev1.VolumeMount{Name: "backups", MountPath: "/backups"})
		args = append(args, "--volume", "/backups/"+stored)
	}

	labels := componentLabels(in.EnvironmentInput, ComponentAgent)
	sc := podSecurity(db.UID, db.UID, false)
	if (in.Command == "backup" || in.Command == "restore") && in.Profile.HasFiles() {
		// The files are the product's: a backup reads what its user may
		// read (files it wrote 0600, as EspoCRM's configuration), and a
		// restore extracts them as that user, whose start path may chown or
		// write them (EspoCRM's entrypoint chowns its directories under
		// set -e). The database's client tools run as any user.
		sc = podSecurity(in.Profile.UID, in.Profile.GID, false)
	}
	// Group access to the files the application wrote.
	sc.SupplementalGroups = []int64{in.Profile.GID}
	sc.FSGroup = ptr.To(in.Profile.GID)
	affinity := regionAffinity(in.Project)
	if in.Command == "backup" || in.Command == "restore" {
		affinity = besideTheApplication(in.EnvironmentInput)
	}
	// The database image runs crm-agent (it needs the image's client
	// tools), copied out of the operator's image or mounted from it.
	var installAgent []corev1.Container
	if !in.AgentImageVolume {
		installAgent = []corev1.Container{{
			Name:            "install-agent",
			Image:           in.AgentImage,
			Command:         []string{AgentPath, "install", "/agent"},
			VolumeMounts:    []corev1.VolumeMount{{Name: "agent", MountPath: "/agent"}},
			SecurityContext: containerSecurity(true),
			Resources:       agentResources(),
		}}
	}
	return &batchv1.Job{
		TypeMeta:   typeMeta("batch/v1", "Job"),
		ObjectMeta: meta(in.JobName, env.Namespace, labels),
		Spec: batchv1.JobSpec{
			// Bounded retries; a hung agent is stopped by the deadline.
			BackoffLimit:            ptr.To(int32(2)),
			ActiveDeadlineSeconds:   ptr.To(int64(6 * 3600)),
			TTLSecondsAfterFinished: ptr.To(int32(7 * 24 * 3600)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					SecurityContext:              sc,
					Affinity:                     affinity,
					Tolerations:                  in.Tolerations,
					AutomountServiceAccountToken: ptr.To(false),
					Volumes:                      vols,
					InitContainers:               installAgent,
					Containers: []corev1.Container{{
						Name:                     "agent",
						Image:                    agentImageTag(in.EnvironmentInput, db),
						Command:                  append([]string{"/agent/crm-agent"}, args...),
						Env:                      envVars,
						VolumeMounts:             mounts,
						SecurityContext:          containerSecurity(true),
						Resources:                agentResources(),
						TerminationMessagePath:   corev1.TerminationMessagePathDefault,
						TerminationMessagePolicy: corev1.TerminationMessageReadFile,
					}},
				},
			},
		},
	}, nil
}

// besideTheApplication is the placement of a Job that mounts the
// environment's files volume (backups, restores, migrations): in the
// project's region and, since a ReadWriteOnce volume is attached to one node
// at a time, on the node of the application's pods while they run (a pod
// elsewhere would wait on a multi-attach error). Preferred, not required:
// with the application stopped (a restore) any node will do.
func besideTheApplication(in *EnvironmentInput) *corev1.Affinity {
	affinity := regionAffinity(in.Project)
	if !in.Profile.HasFiles() {
		return affinity
	}
	if affinity == nil {
		affinity = &corev1.Affinity{}
	}
	affinity.PodAffinity = &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
		Weight: 100,
		PodAffinityTerm: corev1.PodAffinityTerm{
			LabelSelector: &metav1.LabelSelector{MatchLabels: selector(in.Env.Name, ComponentApp)},
			TopologyKey:   corev1.LabelHostname,
		},
	}}}
	return affinity
}

// agentImageTag is the database image whose client tools the agent uses:
// the external server's version when the environment names it.
func agentImageTag(in *EnvironmentInput, db crm.Database) string {
	if ext := in.Env.Spec.Database.External; ext != nil && ext.ServerVersion != "" {
		return in.Images.Resolve(string(db.Engine), db.Image, ext.ServerVersion)
	}
	return in.Images.Resolve(string(db.Engine), db.Image, db.Version)
}

func agentResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
}

// agentPolicy lets agent pods reach the database and the backup store; no
// traffic reaches them.
func agentPolicy(in *EnvironmentInput) *networkingv1.NetworkPolicy {
	np := policy(in, in.Env.Name+"-agent", ComponentAgent, metav1.LabelSelector{MatchLabels: selector(in.Env.Name, ComponentAgent)})
	// The store may be anywhere, an on-premises S3 on a private address included.
	np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
	return np
}

// S3CredentialKeys are the keys the agent reads from the S3 target's Secret.
var S3CredentialKeys = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}

// BackupInProgress reports whether a Backup's phase is not final.
func BackupInProgress(p crmv1alpha1.BackupPhase) bool {
	return p == "" || p == crmv1alpha1.BackupPending || p == crmv1alpha1.BackupRunning
}

// RestoreFinished reports whether a Restore's phase is final.
func RestoreFinished(p crmv1alpha1.RestorePhase) bool {
	return p == crmv1alpha1.RestoreCompleted || p == crmv1alpha1.RestoreFailed
}

// BootstrapRestoreName names the Restore that fills a new environment from spec.bootstrap.
func BootstrapRestoreName(env string) string { return env + "-bootstrap" }

// AnonymizeJobName names the Job that anonymizes a bootstrapped copy.
func AnonymizeJobName(env string) string { return AgentJobName(env, "anonymize") }
