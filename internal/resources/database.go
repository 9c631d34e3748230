package resources

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
)

// The database and cache of an environment.

func databaseStatefulSet(in *EnvironmentInput, db crm.Database, hib bool) *appsv1.StatefulSet {
	name := DatabaseName(in.Env.Name)
	vols, mounts := scratch(db.RunPaths)
	vols = append(vols, claimVolume("data", DataClaimName(in.Env.Name)))
	mounts = append(mounts, corev1.VolumeMount{Name: "data", MountPath: db.DataPath})
	labels := componentLabels(in, ComponentDatabase)
	labels[LabelVersion] = db.Version
	return &appsv1.StatefulSet{
		TypeMeta:   typeMeta("apps/v1", "StatefulSet"),
		ObjectMeta: meta(name, in.Env.Namespace, labels),
		Spec: appsv1.StatefulSetSpec{
			Replicas:    scaled(1, hib),
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: selector(in.Env.Name, ComponentDatabase)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext:              podSecurity(db.UID, db.UID, false),
					Affinity:                     regionAffinity(in.Project),
					Tolerations:                  in.Tolerations,
					AutomountServiceAccountToken: ptr.To(false),
					Volumes:                      vols,
					Containers: []corev1.Container{{
						Name:            "database",
						Image:           in.Images.Resolve(string(db.Engine), db.Image, db.Version),
						Env:             db.Env(CredentialsName(in.Env.Name)),
						Ports:           []corev1.ContainerPort{{Name: "db", ContainerPort: db.Port, Protocol: corev1.ProtocolTCP}},
						VolumeMounts:    mounts,
						Resources:       stageResources(in.Env.Spec.Stage),
						SecurityContext: containerSecurity(true),
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: db.Ready}},
							PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: 3,
						},
						LivenessProbe: &corev1.Probe{
							ProbeHandler:        corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(db.Port)}},
							InitialDelaySeconds: 30, PeriodSeconds: 20, TimeoutSeconds: 5, FailureThreshold: 6,
						},
					}},
				},
			},
		},
	}
}

func redisDeployment(in *EnvironmentInput, hib bool) *appsv1.Deployment {
	vols, mounts := scratch([]string{"/data", "/tmp"})
	labels := componentLabels(in, ComponentRedis)
	labels[LabelVersion] = crm.Redis.Version
	return &appsv1.Deployment{
		TypeMeta:   typeMeta("apps/v1", "Deployment"),
		ObjectMeta: meta(RedisName(in.Env.Name), in.Env.Namespace, labels),
		Spec: appsv1.DeploymentSpec{
			Replicas: scaled(1, hib),
			Selector: &metav1.LabelSelector{MatchLabels: selector(in.Env.Name, ComponentRedis)},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext:              podSecurity(crm.Redis.UID, crm.Redis.UID, false),
					Affinity:                     regionAffinity(in.Project),
					Tolerations:                  in.Tolerations,
					AutomountServiceAccountToken: ptr.To(false),
					Volumes:                      vols,
					Containers: []corev1.Container{{
						Name:  "redis",
						Image: in.Images.Resolve(ImageRedis, crm.Redis.Image, crm.Redis.Version),
						// The password comes from the Secret through the environment,
						// never from the command line the kubelet shows.
						Command: []string{"sh", "-c", `exec redis-server --requirepass "$REDIS_PASSWORD" --save "" --appendonly no`},
						Env: []corev1.EnvVar{{Name: "REDIS_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: CredentialsName(in.Env.Name)}, Key: crm.SecretRedisPassword,
						}}}},
						Ports:           []corev1.ContainerPort{{Name: "redis", ContainerPort: crm.Redis.Port, Protocol: corev1.ProtocolTCP}},
						VolumeMounts:    mounts,
						Resources:       stageResources(crmv1alpha1.StageTest),
						SecurityContext: containerSecurity(true),
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(crm.Redis.Port)}},
							PeriodSeconds: 10,
						},
					}},
				},
			},
		},
	}
}
