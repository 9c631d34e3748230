package resources

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
)

// The application of an environment: its pods, components, ingress and disruption budget.

// Image is the image the application runs: spec.image, else the product's
// image at the input's version. A project's own spec.product.image is
// pulled as written: the manager's --image override and mirrors replace the
// operator's default image, never one a project names.
func Image(in *EnvironmentInput) string {
	if in.Env.Spec.Image != "" {
		return in.Env.Spec.Image
	}
	if in.Profile.Product == crmv1alpha1.ProductCustom || in.Project.Spec.Product.Image != "" {
		return crm.Image(in.Profile.Image, in.Version) // the project's own image, as written
	}
	return in.Images.Resolve(string(in.Profile.Product), in.Profile.Image, in.Version)
}

// appPodSpec is the pod of a container of the product (the application,
// a component, an init or migration Job): its image, environment, volumes
// and the Prepare step before it.
func appPodSpec(in *EnvironmentInput, conn crm.Connection, container corev1.Container) corev1.PodSpec {
	vols, mounts := scratch(in.Profile.TmpPaths)
	// The prepare step sees the files volume's root only: the kubelet
	// creates a missing subPath directory, as root, when it starts a
	// container that mounts it, so the directories must exist, made by the
	// image's user, before any container mounts them.
	prepareMounts := append([]corev1.VolumeMount{}, mounts...)
	if in.Profile.HasFiles() {
		vols = append(vols, claimVolume("files", FilesClaimName(in.Env.Name)))
		for _, f := range in.Profile.Files {
			mounts = append(mounts, corev1.VolumeMount{Name: "files", MountPath: f.Path, SubPath: f.SubPath})
		}
		prepareMounts = append(prepareMounts, corev1.VolumeMount{Name: "files", MountPath: crm.PrepareFilesDir})
	}
	image := Image(in)
	environment := ProductEnv(in, conn)
	container.Image = image
	container.VolumeMounts = mounts
	container.SecurityContext = containerSecurity(in.Profile.ReadOnlyRootFilesystem)
	container.Env = mergeEnv(environment, container.Env)
	spec := corev1.PodSpec{
		SecurityContext:              podSecurity(in.Profile.UID, in.Profile.GID, in.Profile.Port < 1024),
		Affinity:                     regionAffinity(in.Project),
		Tolerations:                  in.Tolerations,
		AutomountServiceAccountToken: ptr.To(false),
		Volumes:                      vols,
		Containers:                   []corev1.Container{container},
	}
	if p := in.Profile.Prepare; p != nil {
		spec.InitContainers = []corev1.Container{{
			Name: "prepare", Image: image, Command: p.Command, Args: p.Args,
			Env:             mergeEnv(environment, p.Env),
			VolumeMounts:    prepareMounts,
			SecurityContext: containerSecurity(in.Profile.ReadOnlyRootFilesystem),
			Resources:       agentResources(),
		}}
	}
	return spec
}

// ProductEnv is what every container of the product reads: the product's
// own variables, its mail settings, HOME when the image's user has none,
// and spec.product.env.
func ProductEnv(in *EnvironmentInput, conn crm.Connection) []corev1.EnvVar {
	vars := in.Profile.Env(conn)
	if conn.Mail.Host != "" {
		vars = mergeEnv(vars, in.Profile.MailVars(conn.Mail))
	}
	if in.Profile.Home != "" {
		vars = mergeEnv(vars, []corev1.EnvVar{{Name: "HOME", Value: in.Profile.Home}})
	}
	return vars
}

// mergeEnv returns base with over's variables replacing those of the same
// name in place and the others appended: a variable is defined once, so
// $(VAR) references keep their order.
func mergeEnv(base, over []corev1.EnvVar) []corev1.EnvVar {
	out := append([]corev1.EnvVar{}, base...)
	index := map[string]int{}
	for i, v := range out {
		index[v.Name] = i
	}
	for _, v := range over {
		if i, ok := index[v.Name]; ok {
			out[i] = v
			continue
		}
		index[v.Name] = len(out)
		out = append(out, v)
	}
	return out
}

// filesAffinity keeps every pod that mounts a ReadWriteOnce files volume on
// the node of the application's pods (the first application pod matches
// its own term and may go anywhere).
func filesAffinity(in *EnvironmentInput) *corev1.Affinity {
	affinity := regionAffinity(in.Project)
	if !in.Profile.HasFiles() || FilesShared(in) || (len(in.Profile.Components) == 0 && replicas(in.Env) <= 1) {
		return affinity
	}
	if affinity == nil {
		affinity = &corev1.Affinity{}
	}
	affinity.PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
		LabelSelector: &metav1.LabelSelector{MatchLabels: selector(in.Env.Name, ComponentApp)},
		TopologyKey:   corev1.LabelHostname,
	}}}
	return affinity
}

func appDeployment(in *EnvironmentInput, conn crm.Connection, hib bool) *appsv1.Deployment {
	port := in.Profile.Port
	probe := func(period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: in.Profile.HealthPath, Port: intstr.FromInt32(port),
			}},
			PeriodSeconds: period, TimeoutSeconds: 5, FailureThreshold: failures,
		}
	}
	labels := componentLabels(in, ComponentApp)
	labels[LabelVersion] = versionLabel(in.Version)
	container := corev1.Container{
		Name:      "app",
		Command:   in.Profile.App.Command,
		Args:      in.Profile.App.Args,
		Env:       in.Profile.App.Env,
		Ports:     []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
		Resources: appResources(in.Env),
		// CRMs install their schema on first start: give them 10 minutes,
		// looked at every 2 s, so that an application started again (after
		// a restore, a wake, a rollout) serves as soon as it answers: the
		// probe's period is downtime the customer sees.
		StartupProbe:   probe(2, 300),
		ReadinessProbe: probe(10, 3),
		LivenessProbe:  probe(10, 6),
	}
	strategy := appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
	if in.Profile.HasFiles() && len(in.Profile.Components) == 0 && replicas(in.Env) == 1 {
		// A single writer of a ReadWriteOnce volume: stop the old pod first.
		strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}
	return &appsv1.Deployment{
		TypeMeta:   typeMeta("apps/v1", "Deployment"),
		ObjectMeta: meta(AppName(in.Env.Name), in.Env.Namespace, labels),
		Spec: appsv1.DeploymentSpec{
			Replicas: scaled(replicas(in.Env), hib),
			Selector: &metav1.LabelSelector{MatchLabels: selector(in.Env.Name, ComponentApp)},
			Strategy: strategy,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       withAffinity(appPodSpec(in, conn, container), filesAffinity(in)),
			},
		},
	}
}

func withAffinity(spec corev1.PodSpec, a *corev1.Affinity) corev1.PodSpec {
	spec.Affinity = a
	return spec
}

func componentDeployment(in *EnvironmentInput, conn crm.Connection, c crm.Component, hib bool) *appsv1.Deployment {
	labels := componentLabels(in, c.Name)
	labels[LabelVersion] = versionLabel(in.Version)
	container := corev1.Container{
		Name:      c.Name,
		Command:   c.Command,
		Args:      c.Args,
		Env:       c.Env,
		Resources: stageResources(crmv1alpha1.StageTest),
	}
	if c.ExtraEnv != nil {
		container.Env = mergeEnv(container.Env, c.ExtraEnv(conn, in.Env.Name))
	}
	for i, port := range c.Ports {
		container.Ports = append(container.Ports, corev1.ContainerPort{Name: fmt.Sprintf("tcp-%d", i), ContainerPort: port, Protocol: corev1.ProtocolTCP})
	}
	if len(c.Ports) > 0 {
		container.ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(c.Ports[0])}},
			PeriodSeconds: 10,
		}
	}
	return &appsv1.Deployment{
		TypeMeta:   typeMeta("apps/v1", "Deployment"),
		ObjectMeta: meta(in.Env.Name+"-"+c.Name, in.Env.Namespace, labels),
		Spec: appsv1.DeploymentSpec{
			// Daemons and workers run once per environment.
			Replicas: scaled(1, hib),
			Selector: &metav1.LabelSelector{MatchLabels: selector(in.Env.Name, c.Name)},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       withAffinity(appPodSpec(in, conn, container), filesAffinity(in)),
			},
		},
	}
}

// versionLabel makes an image tag or digest fit a label value.
func versionLabel(v string) string {
	v = strings.NewReplacer("@", "_", ":", "_", "/", "_").Replace(v)
	if len(v) > 63 {
		v = v[:63]
	}
	return strings.Trim(v, "-_.")
}

func ingress(in *EnvironmentInput) *networkingv1.Ingress {
	host := IngressHost(in)
	prefix := networkingv1.PathTypePrefix
	backend := func(svc string, port int32) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
			Name: svc, Port: networkingv1.ServiceBackendPort{Number: port},
		}}
	}
	var paths []networkingv1.HTTPIngressPath
	for _, c := range in.Profile.Components {
		if c.IngressPath != "" && len(c.Ports) > 0 {
			paths = append(paths, networkingv1.HTTPIngressPath{Path: c.IngressPath, PathType: &prefix, Backend: backend(in.Env.Name+"-"+c.Name, c.Ports[0])})
		}
	}
	if CatchesMail(in) {
		paths = append(paths, networkingv1.HTTPIngressPath{Path: MailPath, PathType: &prefix, Backend: backend(MailName(in.Env.Name), MailWebPort)})
	}
	paths = append(paths, networkingv1.HTTPIngressPath{Path: "/", PathType: &prefix, Backend: backend(AppName(in.Env.Name), in.Profile.Port)})
	ing := &networkingv1.Ingress{
		TypeMeta:   typeMeta("networking.k8s.io/v1", "Ingress"),
		ObjectMeta: meta(in.Env.Name, in.Env.Namespace, componentLabels(in, ComponentApp)),
		Spec: networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{
				HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths},
			}}},
		},
	}
	if c := in.Project.Spec.Hosting.IngressClassName; c != "" {
		ing.Spec.IngressClassName = ptr.To(c)
	}
	if in.Env.Spec.Ingress != nil && in.Env.Spec.Ingress.TLSSecretName != "" {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{host}, SecretName: in.Env.Spec.Ingress.TLSSecretName}}
	}
	return ing
}

func appPDB(in *EnvironmentInput) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   typeMeta("policy/v1", "PodDisruptionBudget"),
		ObjectMeta: meta(AppName(in.Env.Name), in.Env.Namespace, componentLabels(in, ComponentApp)),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: selector(in.Env.Name, ComponentApp)},
		},
	}
}
