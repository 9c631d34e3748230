package controllers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/resources"
)

// EnvironmentFinalizer lets the operator apply the deletion policy to an
// environment's data before the environment goes.
const EnvironmentFinalizer = "crm.crmops.io/environment-data"

// LabelRetainedFrom marks volumes and credentials kept after their
// environment was deleted with deletionPolicy Retain.
const LabelRetainedFrom = "crm.crmops.io/retained-from"

// LabelRetainedProject marks, on a retained claim's PersistentVolume, the
// project (namespace) it came from; AnnotationRetainedClaim names the claim.
const (
	LabelRetainedProject    = "crm.crmops.io/retained-project"
	AnnotationRetainedClaim = "crm.crmops.io/retained-claim"
)

// EnvironmentReconciler keeps one CRM instance (application, database,
// storage, ingress, credentials, network policy) in shape.
type EnvironmentReconciler struct {
	client.Client
	// APIReader reads what the cache does not hold: Secrets the operator did
	// not create, children the cache holds slim.
	APIReader client.Reader
	// Applied records the children found holding their desired state.
	Applied                 *AppliedRecords
	Recorder                events.EventRecorder
	IngressNamespace        string
	AgentImage              string
	MaxConcurrentReconciles int
	// Clock tells the time for backup schedules and retention; nil is time.Now.
	Clock func() time.Time
	// Tolerations are added to every pod the operator creates.
	Tolerations []corev1.Toleration
	written     ownWrites
}

// +kubebuilder:rbac:groups=crm.crmops.io,resources=environments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=crm.crmops.io,resources=environments/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=crm.crmops.io,resources=environments/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets;services;persistentvolumeclaims,verbs=get;list;watch;create;update;patch;delete
// Retained claims' volumes get reclaim policy Retain (retainVolume).
// +kubebuilder:rbac:groups="",resources=persistentvolumes,verbs=get;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses;networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile provisions the environment's objects and records their state.
func (r *EnvironmentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	env := &crmv1alpha1.Environment{}
	found, behind, err := r.written.get(ctx, r.Client, req.NamespacedName, env)
	if err != nil || !found {
		return ctrl.Result{}, err
	}
	if behind {
		// Decided on the older copy, the status write would say again what
		// the last one said, with new condition timestamps; the write's
		// event brings us back (caughtUp).
		return ctrl.Result{RequeueAfter: cacheCatchUp}, nil
	}
	defer r.written.noteIfWritten(env, env.ResourceVersion)
	if !env.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, env)
	}
	if controllerutil.AddFinalizer(env, EnvironmentFinalizer) {
		if err := r.Update(ctx, env); err != nil {
			return ctrl.Result{}, err
		}
	}
	before := env.DeepCopy()
	result, err := r.reconcileNormal(ctx, env)
	env.Status.ObservedGeneration = env.Generation
	if perr := patchStatusIfChanged(ctx, r.Client, env, before, env.Status, before.Status); perr != nil && err == nil {
		err = perr
	}
	return result, err
}

func (r *EnvironmentReconciler) reconcileNormal(ctx context.Context, env *crmv1alpha1.Environment) (ctrl.Result, error) {
	project := &crmv1alpha1.ImplementationProject{}
	if err := r.Get(ctx, types.NamespacedName{Name: env.Spec.ProjectRef.Name}, project); err != nil {
		if apierrors.IsNotFound(err) {
			r.notReady(env, "ProjectNotFound", fmt.Sprintf("ImplementationProject %q does not exist", env.Spec.ProjectRef.Name))
			return ctrl.Result{}, nil // the project watch brings us back
		}
		return ctrl.Result{}, err
	}
	profile, err := crm.For(project.Spec.Product)
	if err != nil {
		r.notReady(env, "InvalidProduct", err.Error())
		return ctrl.Result{}, nil
	}
	in := &resources.EnvironmentInput{
		Project: project, Env: env, Profile: profile,
		Version:          resources.DesiredVersion(project, env, profile),
		IngressNamespace: r.IngressNamespace,
		Tolerations:      r.Tolerations,
	}
	if ext := env.Spec.Database.External; ext != nil {
		if in.External, err = readExternalDatabase(ctx, r.APIReader, env.Namespace, ext.SecretName, profile.Engine); err != nil {
			r.notReady(env, "ExternalDatabaseInvalid", err.Error())
			return ctrl.Result{RequeueAfter: time.Minute}, nil
		}
	}

	if in.Profile.HasFiles() {
		pvc := &corev1.PersistentVolumeClaim{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: env.Namespace, Name: resources.FilesClaimName(env.Name)}, pvc); err == nil {
			in.FilesClaimShared = slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany)
		} else if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
	}
	st, err := r.backupState(ctx, env)
	if err != nil {
		return ctrl.Result{}, err
	}
	bootstrapped, err := r.bootstrap(ctx, env)
	if err != nil {
		return ctrl.Result{}, err
	}
	in.DatabaseNeeded, in.ApplicationStopped = st.databaseNeeded, st.restoring || !bootstrapped
	if err := in.Profile.CheckVersion(in.Version); err != nil {
		r.notReady(env, "UnsupportedVersion", err.Error())
		return ctrl.Result{}, nil
	}
	plan := planInit(env, in)
	initializing := bootstrapped && !st.restoring && !env.Spec.Hibernate && (plan.step != nil || plan.err != nil)
	if initializing {
		// The version that runs needs its installation or upgrade first.
		in.ApplicationStopped = true
	}

	ap := applier{Client: r.Client, APIReader: r.APIReader, Records: r.Applied, Generations: map[string]int64{}}
	if err := r.ensureCredentials(ctx, env, in); err != nil {
		return ctrl.Result{}, err
	}
	desired, absent := resources.EnvironmentObjects(in)
	for _, obj := range desired {
		if _, err := ap.apply(ctx, env, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	for _, obj := range absent {
		if _, err := ap.remove(ctx, env, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	var initResult ctrl.Result
	switch {
	case plan.err != nil && initializing:
		setCondition(&env.Status.Conditions, env.Generation, crmv1alpha1.ConditionInitialized, metav1.ConditionFalse, "UnsupportedUpgrade", plan.err.Error())
	case initializing:
		if initResult, err = r.runInit(ctx, env, in, plan, ap.Generations); err != nil {
			return ctrl.Result{}, err
		}
	case in.Profile.Init == nil:
		setCondition(&env.Status.Conditions, env.Generation, crmv1alpha1.ConditionInitialized, metav1.ConditionTrue, "ByTheImage", "the image installs and upgrades "+string(in.Profile.Product)+" when it starts")
	case env.Status.SchemaVersion == in.Version:
		setCondition(&env.Status.Conditions, env.Generation, crmv1alpha1.ConditionInitialized, metav1.ConditionTrue, "Completed", fmt.Sprintf("the database is installed or upgraded for %s %s", in.Profile.Product, in.Version))
	}
	r.observe(ctx, env, in, ap.Generations, initializing)
	env.Status.MailURL = resources.MailURL(in)
	recordLastBackup(env, st)
	requeue, err := r.scheduleBackups(ctx, project, env, st)
	if err != nil {
		return ctrl.Result{}, err
	}
	if initResult.RequeueAfter > 0 && (requeue == 0 || initResult.RequeueAfter < requeue) {
		requeue = initResult.RequeueAfter
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// ensureCredentials creates the credentials Secret once, with random values.
// It is never rewritten: the database keeps the passwords it started with.
func (r *EnvironmentReconciler) ensureCredentials(ctx context.Context, env *crmv1alpha1.Environment, in *resources.EnvironmentInput) error {
	key := types.NamespacedName{Namespace: env.Namespace, Name: resources.CredentialsName(env.Name)}
	if err := r.Get(ctx, key, &corev1.Secret{}); err == nil || !apierrors.IsNotFound(err) {
		return err
	}
	values := map[string][]byte{}
	for _, k := range crm.SecretKeys {
		v, err := randomSecret()
		if err != nil {
			return err
		}
		values[k] = v
	}
	secret := resources.CredentialsSecret(in, values)
	if err := controllerutil.SetControllerReference(env, secret, r.Scheme()); err != nil {
		return err
	}
	if err := r.Create(ctx, secret); err != nil {
		return client.IgnoreAlreadyExists(err)
	}
	r.Recorder.Eventf(env, nil, corev1.EventTypeNormal, "CredentialsCreated", "Create", "generated credentials in Secret %s", secret.Name)
	return nil
}

// randomSecret returns 32 random bytes, URL-safe base64 encoded so that
// every product accepts it in a URL or a config file.
func randomSecret() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return []byte(base64.RawURLEncoding.EncodeToString(b)), nil
}

// externalDatabase reads the connection of an external database; the
// password stays in its Secret and reaches the application by reference.
func readExternalDatabase(ctx context.Context, apiReader client.Reader, ns, name string, engine crmv1alpha1.DatabaseEngine) (*resources.ExternalDatabase, error) {
	s := &corev1.Secret{}
	if err := apiReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		return nil, fmt.Errorf("reading Secret %s of spec.database.external: %w", name, err)
	}
	for _, k := range []string{"host", "database", "username", "password"} {
		if len(s.Data[k]) == 0 {
			return nil, fmt.Errorf("spec.database.external: Secret %s has no key %q", name, k)
		}
	}
	port := crm.DatabaseFor(engine).Port
	if p := string(s.Data["port"]); p != "" {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("spec.database.external: Secret %s: port %q is not a TCP port", name, p)
		}
		port = int32(n)
	}
	return &resources.ExternalDatabase{
		Host: string(s.Data["host"]), Port: port, Name: string(s.Data["database"]), User: string(s.Data["username"]), SecretName: name,
	}, nil
}

// observe sets phase and conditions from the children's real status.
// applied holds the generations this reconcile found or wrote (applier.Generations).
func (r *EnvironmentReconciler) observe(ctx context.Context, env *crmv1alpha1.Environment, in *resources.EnvironmentInput, applied map[string]int64, initializing bool) {
	gen := env.Generation
	env.Status.URL = resources.URL(in)
	env.Status.Image = resources.Image(in)

	dbReady, dbMsg := true, "external database"
	if in.External == nil {
		dbReady, dbMsg = statefulSetReady(ctx, r.Client, env.Namespace, resources.DatabaseName(env.Name), env.Spec.Hibernate, applied)
	}
	appReady, appMsg := deploymentReady(ctx, r.Client, env.Namespace, resources.AppName(env.Name), env.Spec.Hibernate, applied)
	for _, c := range in.Profile.Components {
		if ok, msg := deploymentReady(ctx, r.Client, env.Namespace, env.Name+"-"+c.Name, env.Spec.Hibernate, applied); !ok && appReady {
			appReady, appMsg = false, msg
		}
	}
	if in.Profile.NeedsRedis && appReady {
		appReady, appMsg = deploymentReady(ctx, r.Client, env.Namespace, resources.RedisName(env.Name), env.Spec.Hibernate, applied)
	}
	setCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionDatabaseReady, boolStatus(dbReady), reason(dbReady, "DatabaseReady", "DatabaseNotReady"), dbMsg)
	setCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionApplicationReady, boolStatus(appReady), reason(appReady, "ApplicationReady", "ApplicationNotReady"), appMsg)

	switch {
	case initializing:
		if env.Status.Phase != crmv1alpha1.EnvironmentReady && env.Status.Phase != crmv1alpha1.EnvironmentDegraded {
			env.Status.Phase = crmv1alpha1.EnvironmentProvisioning
		} else {
			env.Status.Phase = crmv1alpha1.EnvironmentDegraded
		}
		msg := "the application starts once the product's installation or upgrade to " + in.Version + " completed"
		if c := meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionInitialized); c != nil && c.Status == metav1.ConditionFalse {
			msg = c.Message
		}
		setCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Initializing", msg)
	case in.ApplicationStopped && env.Status.Phase != crmv1alpha1.EnvironmentReady && env.Status.Phase != crmv1alpha1.EnvironmentDegraded:
		env.Status.Phase = crmv1alpha1.EnvironmentProvisioning
		setCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Bootstrapping", "filling the environment from spec.bootstrap; the application starts after the restore")
	case in.ApplicationStopped:
		env.Status.Phase = crmv1alpha1.EnvironmentDegraded
		setCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Restoring", "a Restore is replacing the data; the application is stopped")
	case env.Spec.Hibernate && dbReady && appReady:
		env.Status.Phase = crmv1alpha1.EnvironmentHibernated
		setCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Hibernated", "the environment is hibernated: nothing runs, every volume is kept")
	case env.Spec.Hibernate:
		env.Status.Phase = crmv1alpha1.EnvironmentHibernated
		setCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Hibernating", "scaling down to zero")
	case dbReady && appReady:
		if env.Status.Phase != crmv1alpha1.EnvironmentReady {
			r.Recorder.Eventf(env, nil, corev1.EventTypeNormal, "Ready", "Provision", "environment is ready at %s running %s", env.Status.URL, in.Version)
		}
		env.Status.Phase = crmv1alpha1.EnvironmentReady
		env.Status.Version = in.Version
		env.Status.CurrentIncrement = env.Annotations[crmv1alpha1.AnnotationIncrement]
		setCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionTrue, "Ready", "database and application are ready")
	default:
		// Once it has been Ready, losing readiness is a degradation, not provisioning.
		if env.Status.Phase == crmv1alpha1.EnvironmentReady || env.Status.Phase == crmv1alpha1.EnvironmentDegraded {
			env.Status.Phase = crmv1alpha1.EnvironmentDegraded
		} else {
			env.Status.Phase = crmv1alpha1.EnvironmentProvisioning
		}
		msg := appMsg
		if !dbReady {
			msg = dbMsg
		}
		setCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionFalse, string(env.Status.Phase), msg)
	}
	if env.Status.Version == "" && env.Spec.Stage == crmv1alpha1.StageProduction {
		// Production records its first version at once: later versions come only from promotions.
		env.Status.Version = in.Version
	}
}

func (r *EnvironmentReconciler) notReady(env *crmv1alpha1.Environment, why, msg string) {
	if env.Status.Phase == "" {
		env.Status.Phase = crmv1alpha1.EnvironmentProvisioning
	}
	setCondition(&env.Status.Conditions, env.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, why, msg)
}

// deploymentReady reads a Deployment from the cache and judges its rollout
// (deploymentRolledOut); applied holds the generations this reconcile
// found or wrote (applier.Generations), nil when it wrote none.
func deploymentReady(ctx context.Context, c client.Reader, ns, name string, hibernate bool, applied map[string]int64) (bool, string) {
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, d); err != nil {
		return false, fmt.Sprintf("Deployment %s: %v", name, err)
	}
	return deploymentRolledOut(d, hibernate, applied[generationKey("Deployment", name)])
}

// deploymentRolledOut: rolled out at the current generation with every
// replica available (or none running, when hibernated). A copy older than
// the generation last applied describes the previous rollout: the
// operator's cache has not caught up with its own write.
func deploymentRolledOut(d *appsv1.Deployment, hibernate bool, appliedGeneration int64) (bool, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	notObserved := st.ObservedGeneration < d.Generation || d.Generation < appliedGeneration
	switch {
	case notObserved && !hibernate:
		// Said as the next state says it while nothing is available, so
		// the rollout's observation writes no status of its own.
		return false, fmt.Sprintf("Deployment %s: 0/%d replicas updated and available", d.Name, want)
	case notObserved:
		return false, fmt.Sprintf("Deployment %s: rollout not yet observed", d.Name)
	case hibernate && st.Replicas == 0:
		return true, fmt.Sprintf("Deployment %s scaled to zero", d.Name)
	case hibernate:
		return false, fmt.Sprintf("Deployment %s: %d replicas still running", d.Name, st.Replicas)
	case st.UpdatedReplicas < want || st.AvailableReplicas < want || st.Replicas > want:
		return false, fmt.Sprintf("Deployment %s: %d/%d replicas updated and available", d.Name, min(st.UpdatedReplicas, st.AvailableReplicas), want)
	}
	return true, fmt.Sprintf("Deployment %s: %d/%d replicas available", d.Name, st.AvailableReplicas, want)
}

// statefulSetReady is deploymentReady for a StatefulSet.
func statefulSetReady(ctx context.Context, c client.Reader, ns, name string, hibernate bool, applied map[string]int64) (bool, string) {
	s := &appsv1.StatefulSet{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		return false, fmt.Sprintf("StatefulSet %s: %v", name, err)
	}
	return statefulSetRolledOut(s, hibernate, applied[generationKey("StatefulSet", name)])
}

// statefulSetRolledOut is deploymentRolledOut for a StatefulSet.
func statefulSetRolledOut(s *appsv1.StatefulSet, hibernate bool, appliedGeneration int64) (bool, string) {
	want := int32(1)
	if s.Spec.Replicas != nil && *s.Spec.Replicas > 0 {
		want = *s.Spec.Replicas // a database scaled to zero does not serve
	}
	st := s.Status
	notObserved := st.ObservedGeneration < s.Generation || s.Generation < appliedGeneration
	switch {
	case notObserved && !hibernate:
		return false, fmt.Sprintf("StatefulSet %s: 0/%d replicas updated and ready", s.Name, want)
	case notObserved:
		return false, fmt.Sprintf("StatefulSet %s: rollout not yet observed", s.Name)
	case hibernate && st.Replicas == 0:
		return true, fmt.Sprintf("StatefulSet %s scaled to zero", s.Name)
	case hibernate:
		return false, fmt.Sprintf("StatefulSet %s: %d replicas still running", s.Name, st.Replicas)
	case st.ReadyReplicas < want || st.UpdatedReplicas < want:
		return false, fmt.Sprintf("StatefulSet %s: %d/%d replicas updated and ready", s.Name, min(st.ReadyReplicas, st.UpdatedReplicas), want)
	}
	return true, fmt.Sprintf("StatefulSet %s: %d/%d replicas ready", s.Name, st.ReadyReplicas, want)
}

func boolStatus(b bool) metav1.ConditionStatus {
	if b {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}

func reason(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// reconcileDelete applies the deletion policy: Retain keeps the volumes and
// the credentials (no owner, labelled retained-from) so that the data can be
// found and reattached; Delete removes them. Everything else goes with the
// environment through its owner references.
func (r *EnvironmentReconciler) reconcileDelete(ctx context.Context, env *crmv1alpha1.Environment) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(env, EnvironmentFinalizer) {
		return ctrl.Result{}, nil
	}
	if env.Status.Phase != crmv1alpha1.EnvironmentDeleting {
		before := env.DeepCopy()
		env.Status.Phase = crmv1alpha1.EnvironmentDeleting
		if err := patchStatusIfChanged(ctx, r.Client, env, before, env.Status, before.Status); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	policy := resources.EffectiveDeletionPolicy(env)
	data := []client.Object{
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: resources.DataClaimName(env.Name)}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: resources.FilesClaimName(env.Name)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: resources.CredentialsName(env.Name)}},
	}
	for _, obj := range data {
		if err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return ctrl.Result{}, err
		}
		if !metav1.IsControlledBy(obj, env) {
			continue
		}
		if policy == crmv1alpha1.DeletionDelete {
			if err := r.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, err
			}
			continue
		}
		patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
		obj.SetOwnerReferences(nil)
		labels := obj.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelRetainedFrom] = env.Name
		obj.SetLabels(labels)
		if err := r.Patch(ctx, obj, patch); err != nil {
			return ctrl.Result{}, err
		}
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
			if err := r.retainVolume(ctx, env, pvc); err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	if policy == crmv1alpha1.DeletionRetain {
		r.Recorder.Eventf(env, nil, corev1.EventTypeNormal, "DataRetained", "Delete",
			"deletionPolicy Retain: volumes and credentials kept with label %s=%s", LabelRetainedFrom, env.Name)
	}
	log.FromContext(ctx).Info("environment deleted", "deletionPolicy", policy)
	controllerutil.RemoveFinalizer(env, EnvironmentFinalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.Update(ctx, env))
}

// retainVolume puts a retained claim's PersistentVolume out of reach of
// the claim's deletion (and so of its namespace's): reclaim policy Retain,
// labelled with where it came from, so that the data outlives even a
// deleted namespace and can be bound again (README "Deletion").
func (r *EnvironmentReconciler) retainVolume(ctx context.Context, env *crmv1alpha1.Environment, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.Spec.VolumeName == "" {
		return nil // never bound: no data
	}
	pv := &corev1.PersistentVolume{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, pv); err != nil {
		return client.IgnoreNotFound(err)
	}
	patch := client.MergeFrom(pv.DeepCopy())
	pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	if pv.Labels == nil {
		pv.Labels = map[string]string{}
	}
	pv.Labels[LabelRetainedFrom], pv.Labels[LabelRetainedProject] = env.Name, env.Namespace
	if pv.Annotations == nil {
		pv.Annotations = map[string]string{}
	}
	pv.Annotations[AnnotationRetainedClaim] = env.Namespace + "/" + pvc.Name
	if err := r.Patch(ctx, pv, patch); err != nil {
		return err
	}
	r.Recorder.Eventf(env, nil, corev1.EventTypeNormal, "VolumeRetained", "Delete",
		"PersistentVolume %s of claim %s keeps its data (reclaim policy Retain)", pv.Name, pvc.Name)
	return nil
}

// SetupWithManager registers the reconciler: it follows its children's
// status (readiness), and every environment of a project when the project changes.
func (r *EnvironmentReconciler) SetupWithManager(mgr ctrl.Manager) error {
	children := builder.WithPredicates(childChanged())
	phases := builder.WithPredicates(backupOrRestorePhaseChanged())
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.Environment{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionOrFinalizerChanged(), r.written.caughtUp()))).
		Owns(&appsv1.Deployment{}, children).
		Owns(&appsv1.StatefulSet{}, children).
		Owns(&corev1.Service{}, children).
		Owns(&corev1.PersistentVolumeClaim{}, children).
		Owns(&corev1.Secret{}, children).
		Owns(&networkingv1.Ingress{}, children).
		Owns(&networkingv1.NetworkPolicy{}, children).
		Owns(&policyv1.PodDisruptionBudget{}, children).
		Owns(&batchv1.Job{}, children).
		Watches(&crmv1alpha1.Backup{}, handler.EnqueueRequestsFromMapFunc(environmentOfBackupOrRestore), phases).
		Watches(&crmv1alpha1.Restore{}, handler.EnqueueRequestsFromMapFunc(environmentOfBackupOrRestore), phases).
		Watches(&crmv1alpha1.ErasureRequest{}, handler.EnqueueRequestsFromMapFunc(r.environmentsOfErasure)).
		Watches(&crmv1alpha1.ImplementationProject{}, handler.EnqueueRequestsFromMapFunc(r.environmentsOfProject),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}

// environmentsOfProject maps a project to the environments in its namespace.
func (r *EnvironmentReconciler) environmentsOfProject(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &crmv1alpha1.EnvironmentList{}
	if err := r.List(ctx, list, client.InNamespace(obj.GetName())); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, e := range list.Items {
		if e.Spec.ProjectRef.Name == obj.GetName() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&e)})
		}
	}
	return reqs
}

// deletionOrFinalizerChanged passes updates that start a deletion, which do
// not change the generation.
func deletionOrFinalizerChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return !e.ObjectNew.GetDeletionTimestamp().IsZero()
		},
	}
}
