package environment

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/controllers/shared"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/resources"
)

// Reconciler keeps one CRM instance (application, database,
// storage, ingress, credentials, network policy) in shape.
type Reconciler struct {
	// Deps: APIReader reads what the cache does not hold (Secrets the
	// operator did not create, children the cache holds slim); Clock tells
	// the time of backup schedules and retention.
	shared.Deps
	// Applied records the children found holding their desired state.
	Applied *kube.AppliedRecords
	// IngressNamespace is where the ingress controller runs.
	IngressNamespace string
	// MailReader is the portal the mail catchers admit, if any.
	MailReader *resources.MailReader

	written kube.OwnWrites
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
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return kube.Reconcile(ctx, r.Client, req.NamespacedName, &crmv1alpha1.Environment{}, r, kube.Tracking(&r.written))
}

// Settle applies the deletion policy to an environment being deleted.
func (r *Reconciler) Settle(ctx context.Context, env *crmv1alpha1.Environment) (bool, ctrl.Result, error) {
	return kube.Finalize(ctx, r.Client, env, crmv1alpha1.EnvironmentFinalizer, func() (ctrl.Result, error) { return r.reconcileDelete(ctx, env) })
}

// Status is the environment's status and its observedGeneration.
func (r *Reconciler) Status(env *crmv1alpha1.Environment) (any, *int64) {
	return env.Status, &env.Status.ObservedGeneration
}

// Step applies the environment's objects and records their state.
func (r *Reconciler) Step(ctx context.Context, env *crmv1alpha1.Environment, _ kube.Persist) (ctrl.Result, error) {
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
		MailReader:       r.MailReader,
		Tolerations:      r.Tolerations,
		Images:           r.Images,
	}
	if ext := env.Spec.Database.External; ext != nil {
		if in.External, err = shared.ReadExternalDatabase(ctx, r.APIReader, env.Namespace, ext.SecretName, profile.Engine); err != nil {
			r.notReady(env, "ExternalDatabaseInvalid", err.Error())
			return ctrl.Result{RequeueAfter: time.Minute}, nil
		}
	}

	if ok, err := r.adoptRetained(ctx, env); err != nil || !ok {
		return ctrl.Result{}, err // a changed environment or its data brings us back
	}
	if env.Spec.Database.External == nil && env.Status.DatabaseVersion == "" {
		if env.Status.DatabaseVersion, err = r.databaseVersion(ctx, env, profile); err != nil {
			return ctrl.Result{}, err
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

	ap := kube.Applier{Client: r.Client, APIReader: r.APIReader, Records: r.Applied, Generations: map[string]int64{}}
	if err := r.ensureCredentials(ctx, env, in); err != nil {
		return ctrl.Result{}, err
	}
	desired, absent := resources.EnvironmentObjects(in)
	for _, obj := range desired {
		if _, err := ap.Ensure(ctx, env, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	for _, obj := range absent {
		if _, err := ap.Remove(ctx, env, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	var initResult ctrl.Result
	switch {
	case plan.err != nil && initializing:
		kube.SetCondition(&env.Status.Conditions, env.Generation, crmv1alpha1.ConditionInitialized, metav1.ConditionFalse, "UnsupportedUpgrade", plan.err.Error())
	case initializing:
		if initResult, err = r.runInit(ctx, env, in, plan, ap.Generations); err != nil {
			return ctrl.Result{}, err
		}
	case in.Profile.Init == nil:
		kube.SetCondition(&env.Status.Conditions, env.Generation, crmv1alpha1.ConditionInitialized, metav1.ConditionTrue, "ByTheImage", "the image installs and upgrades "+string(in.Profile.Product)+" when it starts")
	case env.Status.SchemaVersion == in.Version:
		kube.SetCondition(&env.Status.Conditions, env.Generation, crmv1alpha1.ConditionInitialized, metav1.ConditionTrue, "Completed", fmt.Sprintf("the database is installed or upgraded for %s %s", in.Profile.Product, in.Version))
	}
	podCheck := r.observe(ctx, env, in, ap.Generations, initializing, st.partial)
	env.Status.MailURL = resources.MailURL(in)
	recordLastBackup(env, st)
	requeue, err := r.scheduleBackups(ctx, project, env, st)
	if err != nil {
		return ctrl.Result{}, err
	}
	for _, after := range []time.Duration{initResult.RequeueAfter, podCheck} {
		if after > 0 && (requeue == 0 || after < requeue) {
			requeue = after
		}
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// databaseVersion is the version the environment's database runs: the one
// its StatefulSet was created with (an environment from before the status
// field, or whose status was lost), else the operator's default for a new one.
// Read from the API server once per environment, not from a cache that may
// not hold the StatefulSet yet: a wrong answer would start the data
// directory under another version.
func (r *Reconciler) databaseVersion(ctx context.Context, env *crmv1alpha1.Environment, profile crm.Profile) (string, error) {
	sts := &metav1.PartialObjectMetadata{}
	sts.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("StatefulSet"))
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: env.Namespace, Name: resources.DatabaseName(env.Name)}, sts)
	if v := sts.Labels[resources.LabelVersion]; err == nil && v != "" {
		return v, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return "", err
	}
	return crm.DatabaseFor(profile.Engine).Version, nil
}

// ensureCredentials creates the credentials Secret once, with random values.
// A value is never rewritten (the database keeps the passwords it started
// with); a key a newer release added (mail-password) is added once.
func (r *Reconciler) ensureCredentials(ctx context.Context, env *crmv1alpha1.Environment, in *resources.EnvironmentInput) error {
	key := types.NamespacedName{Namespace: env.Namespace, Name: resources.CredentialsName(env.Name)}
	existing := &corev1.Secret{}
	if err := r.Get(ctx, key, existing); err == nil {
		return r.addMissingCredentials(ctx, env, existing)
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	values := map[string][]byte{}
	for _, k := range crm.SecretKeys {
		v, err := shared.RandomSecret()
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

func (r *Reconciler) addMissingCredentials(ctx context.Context, env *crmv1alpha1.Environment, secret *corev1.Secret) error {
	var added []string
	patch := client.MergeFrom(secret.DeepCopy())
	for _, k := range crm.SecretKeys {
		if _, ok := secret.Data[k]; ok {
			continue
		}
		v, err := shared.RandomSecret()
		if err != nil {
			return err
		}
		if secret.Data == nil {
			secret.Data = map[string][]byte{}
		}
		secret.Data[k] = v
		added = append(added, k)
	}
	if len(added) == 0 {
		return nil
	}
	if err := r.Patch(ctx, secret, patch); err != nil {
		return err
	}
	r.Recorder.Eventf(env, nil, corev1.EventTypeNormal, "CredentialsAdded", "Update", "generated %s in Secret %s", strings.Join(added, ", "), secret.Name)
	return nil
}

// observe sets phase and conditions from the children's real status, and
// says when to look again: while a workload is not ready, its pods are read
// for a reason that will not pass by itself (kube.PodTrouble), named in the
// condition. applied holds the generations this reconcile found or wrote
// (kube.Applier.Generations).
func (r *Reconciler) observe(ctx context.Context, env *crmv1alpha1.Environment, in *resources.EnvironmentInput, applied map[string]int64, initializing bool, partial string) (lookAgain time.Duration) {
	gen := env.Generation
	env.Status.URL = resources.URL(in)
	env.Status.Image = resources.Image(in)

	dbReady, dbMsg := true, "external database"
	if in.External == nil {
		dbReady, dbMsg = kube.WorkloadReady(ctx, r.Client, kube.StatefulSet, env.Namespace, resources.DatabaseName(env.Name), env.Spec.Hibernate, applied)
	}
	appReady, appMsg := kube.WorkloadReady(ctx, r.Client, kube.Deployment, env.Namespace, resources.AppName(env.Name), env.Spec.Hibernate, applied)
	for _, c := range in.Profile.Components {
		if ok, msg := kube.WorkloadReady(ctx, r.Client, kube.Deployment, env.Namespace, env.Name+"-"+c.Name, env.Spec.Hibernate, applied); !ok && appReady {
			appReady, appMsg = false, msg
		}
	}
	if in.Profile.NeedsRedis && appReady {
		appReady, appMsg = kube.WorkloadReady(ctx, r.Client, kube.Deployment, env.Namespace, resources.RedisName(env.Name), env.Spec.Hibernate, applied)
	}
	if !env.Spec.Hibernate && (!dbReady || !appReady) {
		lookAgain = kube.PodCheck
	}
	// Pods are read only once readiness has been missing for a PodCheck:
	// a provisioning that goes well (most of them) costs no List.
	if lookAgain > 0 && r.notReadyFor(env) >= kube.PodCheck {
		if !dbReady {
			dbMsg = withPodTrouble(ctx, r.APIReader, env, selection.In, dbMsg)
		}
		if !appReady && !in.ApplicationStopped {
			appMsg = withPodTrouble(ctx, r.APIReader, env, selection.NotIn, appMsg)
		}
	}
	kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionDatabaseReady, kube.ConditionStatus(dbReady), reason(dbReady, "DatabaseReady", "DatabaseNotReady"), dbMsg)
	kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionApplicationReady, kube.ConditionStatus(appReady), reason(appReady, "ApplicationReady", "ApplicationNotReady"), appMsg)

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
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Initializing", msg)
	case partial != "":
		env.Status.Phase = crmv1alpha1.EnvironmentDegraded
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "RestoreFailedHalfWay", partial)
	case in.ApplicationStopped && env.Status.Phase != crmv1alpha1.EnvironmentReady && env.Status.Phase != crmv1alpha1.EnvironmentDegraded:
		env.Status.Phase = crmv1alpha1.EnvironmentProvisioning
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Bootstrapping", "filling the environment from spec.bootstrap; the application starts after the restore")
	case in.ApplicationStopped:
		env.Status.Phase = crmv1alpha1.EnvironmentDegraded
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Restoring", "a Restore is replacing the data; the application is stopped")
	case env.Spec.Hibernate && dbReady && appReady:
		env.Status.Phase = crmv1alpha1.EnvironmentHibernated
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Hibernated", "the environment is hibernated: nothing runs, every volume is kept")
	case env.Spec.Hibernate:
		env.Status.Phase = crmv1alpha1.EnvironmentHibernated
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Hibernating", "scaling down to zero")
	case dbReady && appReady:
		if env.Status.Phase != crmv1alpha1.EnvironmentReady {
			r.Recorder.Eventf(env, nil, corev1.EventTypeNormal, "Ready", "Provision", "environment is ready at %s running %s", env.Status.URL, in.Version)
		}
		env.Status.Phase = crmv1alpha1.EnvironmentReady
		env.Status.Version = in.Version
		env.Status.CurrentIncrement = env.Annotations[crmv1alpha1.AnnotationIncrement]
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionTrue, "Ready", "database and application are ready")
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
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionReady, metav1.ConditionFalse, string(env.Status.Phase), msg)
	}
	if env.Status.Version == "" && env.Spec.Stage == crmv1alpha1.StageProduction {
		// Production records its first version at once: later versions come only from promotions.
		env.Status.Version = in.Version
	}
	return lookAgain
}

// notReadyFor is how long the environment's Ready condition has been
// False (zero when it is True or absent).
func (r *Reconciler) notReadyFor(env *crmv1alpha1.Environment) time.Duration {
	c := meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionFalse {
		return 0
	}
	return r.Clock.Now().Sub(c.LastTransitionTime.Time)
}

// withPodTrouble adds to msg why a pod of the environment does not run:
// its database's (selection.In) or its application's, cache's and mail
// catcher's (selection.NotIn); the Jobs' pods say so on their own objects.
func withPodTrouble(ctx context.Context, r client.Reader, env *crmv1alpha1.Environment, op selection.Operator, msg string) string {
	components := []string{resources.ComponentDatabase}
	if op == selection.NotIn {
		components = append(components, resources.ComponentAgent, resources.ComponentMigration, resources.ComponentInit)
	}
	byEnv, _ := labels.NewRequirement(crmv1alpha1.LabelEnvironment, selection.Equals, []string{env.Name})
	byComponent, err := labels.NewRequirement(resources.LabelComponent, op, components)
	if err != nil {
		return msg
	}
	if trouble := kube.PodTrouble(ctx, r, env.Namespace, labels.NewSelector().Add(*byEnv, *byComponent)); trouble != "" {
		return msg + "; " + trouble
	}
	return msg
}

func (r *Reconciler) notReady(env *crmv1alpha1.Environment, why, msg string) {
	if env.Status.Phase == "" {
		env.Status.Phase = crmv1alpha1.EnvironmentProvisioning
	}
	kube.SetCondition(&env.Status.Conditions, env.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, why, msg)
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
func (r *Reconciler) reconcileDelete(ctx context.Context, env *crmv1alpha1.Environment) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(env, crmv1alpha1.EnvironmentFinalizer) {
		return ctrl.Result{}, nil
	}
	if env.Status.Phase != crmv1alpha1.EnvironmentDeleting {
		before := env.DeepCopy()
		env.Status.Phase = crmv1alpha1.EnvironmentDeleting
		if err := kube.PatchStatus(ctx, r.Client, env, before, env.Status, before.Status); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	policy := resources.EffectiveDeletionPolicy(env)
	for _, obj := range retainedData(env) {
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
		labels[crmv1alpha1.LabelRetainedFrom] = env.Name
		labels[crmv1alpha1.LabelRetainedStage] = string(env.Spec.Stage)
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
			"deletionPolicy Retain: volumes and credentials kept with label %s=%s", crmv1alpha1.LabelRetainedFrom, env.Name)
	}
	log.FromContext(ctx).Info("environment deleted", "deletionPolicy", policy)
	controllerutil.RemoveFinalizer(env, crmv1alpha1.EnvironmentFinalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.Update(ctx, env))
}

// adoptRetained decides whether the environment may take over the volumes
// and credentials a deleted environment of its name retained: only one of
// the same stage may (a production's data must not become a test's, nor a
// test's production's, with the old passwords). It says so in an Event when
// it adopts, and in Ready (reason RetainedDataOfAnotherStage) when it
// refuses; then nothing of the environment is applied.
func (r *Reconciler) adoptRetained(ctx context.Context, env *crmv1alpha1.Environment) (bool, error) {
	var adopted []string
	for _, obj := range retainedData(env) {
		if err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return false, err
		}
		from, retained := obj.GetLabels()[crmv1alpha1.LabelRetainedFrom]
		if !retained || metav1.IsControlledBy(obj, env) {
			continue
		}
		stage := obj.GetLabels()[crmv1alpha1.LabelRetainedStage]
		if stage == "" {
			stage = string(crmv1alpha1.StageProduction)
		}
		if stage != string(env.Spec.Stage) {
			msg := fmt.Sprintf("%s %s holds the retained data of %s environment %s; a %s environment may not adopt it: delete it, or create the environment as %s",
				kindOf(obj), obj.GetName(), stage, from, env.Spec.Stage, stage)
			if c := meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionReady); c == nil || c.Reason != "RetainedDataOfAnotherStage" {
				r.Recorder.Eventf(env, nil, corev1.EventTypeWarning, "RetainedDataOfAnotherStage", "Adopt", "%s", msg)
			}
			r.notReady(env, "RetainedDataOfAnotherStage", msg)
			return false, nil
		}
		adopted = append(adopted, kindOf(obj)+" "+obj.GetName())
		// Owned again, and no longer marked retained: the deletion policy
		// applies to it anew, and this is said once.
		patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
		labels := obj.GetLabels()
		delete(labels, crmv1alpha1.LabelRetainedFrom)
		delete(labels, crmv1alpha1.LabelRetainedStage)
		obj.SetLabels(labels)
		if err := controllerutil.SetControllerReference(env, obj, r.Scheme()); err != nil {
			return false, err
		}
		if err := r.Patch(ctx, obj, patch); err != nil {
			return false, err
		}
	}
	if len(adopted) > 0 {
		r.Recorder.Eventf(env, nil, corev1.EventTypeNormal, "AdoptedRetainedData", "Adopt",
			"adopting the data retained by the %s environment of this name: %s", env.Spec.Stage, strings.Join(adopted, ", "))
	}
	return true, nil
}

// retainedData are the objects deletionPolicy Retain keeps of an environment.
func retainedData(env *crmv1alpha1.Environment) []client.Object {
	return []client.Object{
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: resources.DataClaimName(env.Name)}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: resources.FilesClaimName(env.Name)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: resources.CredentialsName(env.Name)}},
	}
}

func kindOf(obj client.Object) string {
	if _, ok := obj.(*corev1.Secret); ok {
		return "Secret"
	}
	return "PersistentVolumeClaim"
}

// retainVolume puts a retained claim's PersistentVolume out of reach of
// the claim's deletion (and so of its namespace's): reclaim policy Retain,
// labelled with where it came from, so that the data outlives even a
// deleted namespace and can be bound again
// (docs/user-guide/projects-and-environments.md#deletion-and-retained-data).
func (r *Reconciler) retainVolume(ctx context.Context, env *crmv1alpha1.Environment, pvc *corev1.PersistentVolumeClaim) error {
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
	pv.Labels[crmv1alpha1.LabelRetainedFrom], pv.Labels[crmv1alpha1.LabelRetainedProject] = env.Name, env.Namespace
	if pv.Annotations == nil {
		pv.Annotations = map[string]string{}
	}
	pv.Annotations[crmv1alpha1.AnnotationRetainedClaim] = env.Namespace + "/" + pvc.Name
	if err := r.Patch(ctx, pv, patch); err != nil {
		return err
	}
	r.Recorder.Eventf(env, nil, corev1.EventTypeNormal, "VolumeRetained", "Delete",
		"PersistentVolume %s of claim %s keeps its data (reclaim policy Retain)", pv.Name, pvc.Name)
	return nil
}

// SetupWithManager registers the reconciler: it follows its children's
// status (readiness), and every environment of a project when the project changes.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	children := builder.WithPredicates(kube.ChildChanged())
	phases := builder.WithPredicates(backupOrRestorePhaseChanged())
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.Environment{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, incrementRecorded(), kube.DeletionStarted(), r.written.CaughtUp()))).
		Owns(&appsv1.Deployment{}, children).
		Owns(&appsv1.StatefulSet{}, children).
		Owns(&corev1.Service{}, children).
		Owns(&corev1.PersistentVolumeClaim{}, children).
		Owns(&corev1.Secret{}, children).
		Owns(&networkingv1.Ingress{}, children).
		Owns(&networkingv1.NetworkPolicy{}, children).
		Owns(&policyv1.PodDisruptionBudget{}, children).
		Owns(&batchv1.Job{}, children).
		// An init Job's pod that cannot start is named at once (runInit).
		Watches(&corev1.Pod{}, kube.EnqueueForJobPods(mgr.GetClient(), kube.ControllerOfKind("Environment")), builder.WithPredicates(kube.PodStartChanged())).
		Watches(&crmv1alpha1.Backup{}, handler.EnqueueRequestsFromMapFunc(environmentOfBackupOrRestore), phases).
		Watches(&crmv1alpha1.Restore{}, handler.EnqueueRequestsFromMapFunc(environmentOfBackupOrRestore), phases).
		Watches(&crmv1alpha1.ErasureRequest{}, handler.EnqueueRequestsFromMapFunc(r.environmentsOfErasure)).
		Watches(&crmv1alpha1.ImplementationProject{}, handler.EnqueueRequestsFromMapFunc(r.environmentsOfProject),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}

// environmentsOfProject maps a project to the environments in its namespace.
func (r *Reconciler) environmentsOfProject(ctx context.Context, obj client.Object) []reconcile.Request {
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
