package resources

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
)

// Components of an environment, as the label app.kubernetes.io/component.
const (
	LabelComponent     = "app.kubernetes.io/component"
	LabelName          = "app.kubernetes.io/name"
	LabelInstance      = "app.kubernetes.io/instance"
	LabelVersion       = "app.kubernetes.io/version"
	ComponentApp       = "app"
	ComponentDatabase  = "database"
	ComponentRedis     = "redis"
	RegionLabel        = "topology.kubernetes.io/region"
	unprivilegedPortSc = "net.ipv4.ip_unprivileged_port_start"
)

// ExternalDatabase is an environment's database the operator does not run,
// read from the Secret named in spec.database.external.
type ExternalDatabase struct {
	Host, Name, User string
	Port             int32
	SecretName       string // holds the key "password"
}

// EnvironmentInput is everything the environment's objects depend on.
type EnvironmentInput struct {
	Project *crmv1alpha1.ImplementationProject
	Env     *crmv1alpha1.Environment
	Profile crm.Profile
	// Version (image tag) the application runs.
	Version string
	// External is set when spec.database.external names a database.
	External *ExternalDatabase
	// IngressNamespace is where the ingress controller runs; its pods may
	// reach the application.
	IngressNamespace string
	// DatabaseNeeded runs the database of a hibernated environment, for a
	// backup or restore.
	DatabaseNeeded bool
	// ApplicationStopped scales the application and its components to zero
	// while a restore replaces their data.
	ApplicationStopped bool
	// FilesClaimShared is true when the files claim exists as ReadWriteMany
	// (an access mode is immutable): its pods keep spreading.
	FilesClaimShared bool
	// Tolerations are added to every pod (the manager's --pod-toleration),
	// e.g. for the simulated nodes of the local cluster.
	Tolerations []corev1.Toleration
	// Images is where the default images are pulled from (the manager's
	// --image-mirror and --image).
	Images Images
	// MailReader, when set, is the product owner's portal, which shows the
	// mail a test environment sent: its mail catcher admits it.
	MailReader *MailReader
}

// Database is the server the environment's database runs, and whose tools
// its agent Jobs use: the operator's default image at the version recorded
// when the database was created (status.databaseVersion).
func (in *EnvironmentInput) Database() crm.Database {
	db := crm.DatabaseFor(in.Profile.Engine)
	if v := in.Env.Status.DatabaseVersion; v != "" && in.Env.Spec.Database.External == nil {
		db.Version = v
	}
	return db
}

// Names of an environment's objects.
func CredentialsName(env string) string { return env + "-credentials" }
func DatabaseName(env string) string    { return env + "-db" }
func DataClaimName(env string) string   { return env + "-db-data" }
func RedisName(env string) string       { return env + "-redis" }
func AppName(env string) string         { return env + "-app" }
func FilesClaimName(env string) string  { return env + "-files" }

// EnvironmentLabels are the labels of every object of an environment.
func EnvironmentLabels(in *EnvironmentInput) map[string]string {
	l := ProjectLabels(in.Project.Name)
	l[crmv1alpha1.LabelEnvironment] = in.Env.Name
	l[LabelInstance] = in.Env.Name
	l[LabelName] = string(in.Project.Spec.Product.Name)
	return l
}

// selector is the immutable pod selector of one component.
func selector(env, component string) map[string]string {
	return map[string]string{crmv1alpha1.LabelEnvironment: env, LabelComponent: component}
}

func componentLabels(in *EnvironmentInput, component string) map[string]string {
	l := EnvironmentLabels(in)
	l[LabelComponent] = component
	return l
}

// URL is where the environment is reached: its ingress host, or the
// application Service inside the cluster.
func URL(in *EnvironmentInput) string {
	if host := IngressHost(in); host != "" {
		if in.Env.Spec.Ingress != nil && in.Env.Spec.Ingress.TLSSecretName != "" {
			return "https://" + host
		}
		return "http://" + host
	}
	return fmt.Sprintf("http://%s.%s.svc:%d", AppName(in.Env.Name), in.Env.Namespace, in.Profile.Port)
}

// IngressHost is spec.ingress.host, or <env>.<project>.<domain> when the
// project has a domain; empty when the environment has no ingress.
func IngressHost(in *EnvironmentInput) string {
	if in.Env.Spec.Ingress != nil && in.Env.Spec.Ingress.Host != "" {
		return in.Env.Spec.Ingress.Host
	}
	if d := in.Project.Spec.Hosting.Domain; d != "" {
		return fmt.Sprintf("%s.%s.%s", in.Env.Name, in.Project.Name, d)
	}
	return ""
}

// Hibernated is true when the environment runs nothing.
func Hibernated(env *crmv1alpha1.Environment) bool { return env.Spec.Hibernate }

// EffectiveDeletionPolicy is spec.deletionPolicy or the stage's default.
func EffectiveDeletionPolicy(env *crmv1alpha1.Environment) crmv1alpha1.DeletionPolicy {
	if env.Spec.DeletionPolicy != "" {
		return env.Spec.DeletionPolicy
	}
	if env.Spec.Stage == crmv1alpha1.StageProduction {
		return crmv1alpha1.DeletionRetain
	}
	return crmv1alpha1.DeletionDelete
}

// CredentialsSecret holds the generated passwords; created once, never
// rewritten, so its values are passed in rather than generated here.
func CredentialsSecret(in *EnvironmentInput, values map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   typeMeta("v1", "Secret"),
		ObjectMeta: meta(CredentialsName(in.Env.Name), in.Env.Namespace, EnvironmentLabels(in)),
		Type:       corev1.SecretTypeOpaque,
		Data:       values,
	}
}

// connection tells the application where its database and Redis are.
func connection(in *EnvironmentInput) crm.Connection {
	c := crm.Connection{
		DatabaseHost: DatabaseName(in.Env.Name), DatabasePort: crm.DatabaseFor(in.Profile.Engine).Port,
		DatabaseName: crm.DatabaseName, DatabaseUser: crm.DatabaseUser,
		DatabasePassword: corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: CredentialsName(in.Env.Name)}, Key: crm.SecretDatabasePassword,
		},
		SiteURL:    URL(in),
		SecretName: CredentialsName(in.Env.Name),
		EnvName:    in.Env.Name,
		Mail:       MailOf(in),
	}
	if x := in.External; x != nil {
		c.DatabaseHost, c.DatabasePort, c.DatabaseName, c.DatabaseUser = x.Host, x.Port, x.Name, x.User
		c.DatabasePassword = corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: x.SecretName}, Key: "password"}
	}
	if in.Profile.NeedsRedis {
		c.RedisHost = RedisName(in.Env.Name)
	}
	return c
}

// EnvironmentObjects returns the objects an environment needs (desired) and
// those that must not exist for its spec (absent), except the credentials
// Secret (see CredentialsSecret).
func EnvironmentObjects(in *EnvironmentInput) (desired, absent []client.Object) {
	env := in.Env
	ns := env.Namespace
	hib := Hibernated(env)
	conn := connection(in)
	db := in.Database()

	// The database, unless external.
	if in.External == nil {
		desired = append(desired,
			claim(in, DataClaimName(env.Name), ComponentDatabase, dataSize(env)),
			headlessService(in, DatabaseName(env.Name), ComponentDatabase, db.Port),
			databaseStatefulSet(in, db, hib && !in.DatabaseNeeded),
			databasePolicy(in, db.Port),
		)
	} else {
		absent = append(absent,
			&appsv1.StatefulSet{TypeMeta: typeMeta("apps/v1", "StatefulSet"), ObjectMeta: meta(DatabaseName(env.Name), ns, nil)},
			&corev1.Service{TypeMeta: typeMeta("v1", "Service"), ObjectMeta: meta(DatabaseName(env.Name), ns, nil)},
			&networkingv1.NetworkPolicy{TypeMeta: typeMeta("networking.k8s.io/v1", "NetworkPolicy"), ObjectMeta: meta(DatabaseName(env.Name), ns, nil)},
		)
	}
	if in.Profile.NeedsRedis {
		desired = append(desired,
			service(in, RedisName(env.Name), ComponentRedis, corev1.ServiceTypeClusterIP, crm.Redis.Port),
			redisDeployment(in, hib),
			redisPolicy(in),
		)
	}

	if in.Profile.HasFiles() {
		desired = append(desired, claim(in, FilesClaimName(env.Name), ComponentApp, filesSize(env)))
	}
	desired = append(desired,
		service(in, AppName(env.Name), ComponentApp, appServiceType(in), in.Profile.Port),
		appDeployment(in, conn, hib || in.ApplicationStopped),
		appPolicy(in),
	)
	for _, c := range in.Profile.Components {
		desired = append(desired, componentDeployment(in, conn, c, hib || in.ApplicationStopped))
		if len(c.Ports) > 0 {
			desired = append(desired, service(in, env.Name+"-"+c.Name, c.Name, corev1.ServiceTypeClusterIP, c.Ports...))
		}
	}
	catcher := []client.Object{
		&appsv1.Deployment{TypeMeta: typeMeta("apps/v1", "Deployment"), ObjectMeta: meta(MailName(env.Name), ns, nil)},
		&corev1.Service{TypeMeta: typeMeta("v1", "Service"), ObjectMeta: meta(MailName(env.Name), ns, nil)},
		&networkingv1.NetworkPolicy{TypeMeta: typeMeta("networking.k8s.io/v1", "NetworkPolicy"), ObjectMeta: meta(MailName(env.Name), ns, nil)},
	}
	if CatchesMail(in) {
		desired = append(desired, mailDeployment(in, hib), service(in, MailName(env.Name), ComponentMail, corev1.ServiceTypeClusterIP, MailSMTPPort, MailWebPort), mailPolicy(in))
	} else {
		absent = append(absent, catcher...)
	}

	if in.Project.Spec.Backup != nil {
		desired = append(desired, agentPolicy(in))
	}
	ing := &networkingv1.Ingress{TypeMeta: typeMeta("networking.k8s.io/v1", "Ingress"), ObjectMeta: meta(env.Name, ns, nil)}
	if IngressHost(in) != "" {
		desired = append(desired, ingress(in))
	} else {
		absent = append(absent, ing)
	}
	pdb := &policyv1.PodDisruptionBudget{TypeMeta: typeMeta("policy/v1", "PodDisruptionBudget"), ObjectMeta: meta(AppName(env.Name), ns, nil)}
	if env.Spec.Stage == crmv1alpha1.StageProduction && !hib {
		desired = append(desired, appPDB(in))
	} else {
		absent = append(absent, pdb)
	}
	return desired, absent
}

func dataSize(env *crmv1alpha1.Environment) resource.Quantity {
	if env.Spec.Storage.DataSize != nil {
		return *env.Spec.Storage.DataSize
	}
	return resource.MustParse("10Gi")
}

func filesSize(env *crmv1alpha1.Environment) resource.Quantity {
	if env.Spec.Storage.FilesSize != nil {
		return *env.Spec.Storage.FilesSize
	}
	return resource.MustParse("5Gi")
}

// StorageClass is the environment's class, else the project's; empty uses
// the cluster default.
func StorageClass(in *EnvironmentInput) string {
	if c := in.Env.Spec.Storage.StorageClassName; c != "" {
		return c
	}
	return in.Project.Spec.Hosting.StorageClassName
}

func claim(in *EnvironmentInput, name, component string, size resource.Quantity) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   typeMeta("v1", "PersistentVolumeClaim"),
		ObjectMeta: meta(name, in.Env.Namespace, componentLabels(in, component)),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
	// The files volume is shared by the application's replicas and
	// components: on one node (ReadWriteOnce, every class has it) unless the
	// environment asks for ReadWriteMany.
	if component == ComponentApp && FilesShared(in) {
		pvc.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	}
	if sc := StorageClass(in); sc != "" {
		pvc.Spec.StorageClassName = ptr.To(sc)
	}
	return pvc
}

func replicas(env *crmv1alpha1.Environment) int32 {
	if env.Spec.Replicas != nil {
		return *env.Spec.Replicas
	}
	return 1
}

// appServiceType: on premises without an ingress, the application is
// exposed on a node port; in the cloud it stays internal behind the ingress.
func appServiceType(in *EnvironmentInput) corev1.ServiceType {
	if in.Project.Spec.Hosting.Mode == crmv1alpha1.HostingOnPrem && IngressHost(in) == "" {
		return corev1.ServiceTypeNodePort
	}
	return corev1.ServiceTypeClusterIP
}

// FilesShared reports whether the files volume is ReadWriteMany.
func FilesShared(in *EnvironmentInput) bool {
	return in.Env.Spec.Storage.FilesAccessMode == corev1.ReadWriteMany || in.FilesClaimShared
}

func service(in *EnvironmentInput, name, component string, typ corev1.ServiceType, ports ...int32) *corev1.Service {
	svc := &corev1.Service{
		TypeMeta:   typeMeta("v1", "Service"),
		ObjectMeta: meta(name, in.Env.Namespace, componentLabels(in, component)),
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: selector(in.Env.Name, component),
		},
	}
	for i, port := range ports {
		name := "tcp"
		if i > 0 {
			name = fmt.Sprintf("tcp-%d", port)
		}
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: name, Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP})
	}
	return svc
}

func headlessService(in *EnvironmentInput, name, component string, port int32) *corev1.Service {
	s := service(in, name, component, corev1.ServiceTypeClusterIP, port)
	s.Spec.ClusterIP = corev1.ClusterIPNone
	return s
}

// stageResources are the defaults of a stage: production gets room, test
// and training environments stay small.
func stageResources(stage crmv1alpha1.Stage) corev1.ResourceRequirements {
	cpu, mem, limit := "100m", "256Mi", "1Gi"
	switch stage {
	case crmv1alpha1.StageProduction:
		cpu, mem, limit = "500m", "1Gi", "2Gi"
	case crmv1alpha1.StageStaging:
		cpu, mem, limit = "250m", "512Mi", "1Gi"
	}
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limit)},
	}
}

func appResources(env *crmv1alpha1.Environment) corev1.ResourceRequirements {
	if env.Spec.Resources != nil {
		return *env.Spec.Resources
	}
	return stageResources(env.Spec.Stage)
}

// podSecurity passes the Pod Security "restricted" profile. Ports below 1024
// are allowed to the non-root user with the namespaced sysctl that the profile
// permits, rather than a capability.
// The volumes' group is the image's group, set only when the volume's root
// does not have it yet (OnRootMismatch): a large files tree is not walked
// on every start.
func podSecurity(uid, gid int64, lowPort bool) *corev1.PodSecurityContext {
	sc := &corev1.PodSecurityContext{
		RunAsNonRoot:        ptr.To(true),
		RunAsUser:           ptr.To(uid),
		RunAsGroup:          ptr.To(gid),
		FSGroup:             ptr.To(gid),
		FSGroupChangePolicy: ptr.To(corev1.FSGroupChangeOnRootMismatch),
		SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if lowPort {
		sc.Sysctls = []corev1.Sysctl{{Name: unprivilegedPortSc, Value: "0"}}
	}
	return sc
}

func containerSecurity(readOnlyRoot bool) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		RunAsNonRoot:             ptr.To(true),
		ReadOnlyRootFilesystem:   ptr.To(readOnlyRoot),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// regionAffinity keeps pods in the project's region (data residency).
func regionAffinity(p *crmv1alpha1.ImplementationProject) *corev1.Affinity {
	if p.Spec.Hosting.Region == "" {
		return nil
	}
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
				Key: RegionLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{p.Spec.Hosting.Region},
			}}}},
		},
	}}
}

// scratch mounts an emptyDir at each path, so the root filesystem can stay read-only.
func scratch(paths []string) ([]corev1.Volume, []corev1.VolumeMount) {
	var vols []corev1.Volume
	var mounts []corev1.VolumeMount
	for i, p := range paths {
		name := fmt.Sprintf("scratch-%d", i)
		vols = append(vols, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: p})
	}
	return vols, mounts
}

func claimVolume(name, claimName string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName},
	}}
}

func scaled(n int32, hibernate bool) *int32 {
	if hibernate {
		return ptr.To(int32(0))
	}
	return ptr.To(n)
}

// DesiredVersion is the version the environment's application runs:
// spec.version, then the project's version, then the product's default.
// Production's spec.version changes only through promotions (admission
// policy); production also keeps the version it runs when the project's
// default moves on.
func DesiredVersion(p *crmv1alpha1.ImplementationProject, env *crmv1alpha1.Environment, prof crm.Profile) string {
	if env.Spec.Version != "" {
		return env.Spec.Version
	}
	if env.Spec.Stage == crmv1alpha1.StageProduction && env.Status.Version != "" {
		return env.Status.Version
	}
	if env.Spec.Version != "" {
		return env.Spec.Version
	}
	if p.Spec.Product.Version != "" {
		return p.Spec.Product.Version
	}
	return prof.DefaultVersion
}

// SchemaVersion is the version the environment's database was installed or
// upgraded for: the last init/upgrade step's, else the version it runs.
func SchemaVersion(env *crmv1alpha1.Environment) string {
	if env.Status.SchemaVersion != "" {
		return env.Status.SchemaVersion
	}
	return env.Status.Version
}
