package environment

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/controllers/agentjob"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/policy"
	"github.com/crmops/crm-operator/internal/promotion"
	"github.com/crmops/crm-operator/internal/resources"
)

// backupState is what an environment's Backups and Restores ask of it.
type backupState struct {
	backups []crmv1alpha1.Backup
	// databaseNeeded: a backup or restore runs (start a hibernated database).
	databaseNeeded bool
	// restoring: a restore runs, or one failed half-way (stop the application).
	restoring bool
	// partial says which failed Restore left the data partial, with no
	// completed Restore after it.
	partial string
	// inUse names Backups a Restore still reads, and the pre-promotion
	// Backups of increments still in flight: their rollback may need them.
	inUse map[string]bool
}

func (r *Reconciler) backupState(ctx context.Context, env *crmv1alpha1.Environment) (*backupState, error) {
	st := &backupState{inUse: map[string]bool{}}
	backups := &crmv1alpha1.BackupList{}
	if err := r.List(ctx, backups, client.InNamespace(env.Namespace)); err != nil {
		return nil, err
	}
	for _, b := range backups.Items {
		if b.Spec.EnvironmentRef.Name != env.Name {
			continue
		}
		st.backups = append(st.backups, b)
		if resources.BackupInProgress(b.Status.Phase) && b.DeletionTimestamp == nil {
			st.databaseNeeded = true
		}
	}
	restores := &crmv1alpha1.RestoreList{}
	if err := r.List(ctx, restores, client.InNamespace(env.Namespace)); err != nil {
		return nil, err
	}
	erasures := &crmv1alpha1.ErasureRequestList{}
	if err := r.List(ctx, erasures, client.InNamespace(env.Namespace)); err != nil {
		return nil, err
	}
	if agentjob.ErasurePendingIn(erasures.Items, env.Name) {
		st.databaseNeeded = true
	}
	increments := &crmv1alpha1.IncrementList{}
	if err := r.List(ctx, increments, client.InNamespace(env.Namespace)); err != nil {
		return nil, err
	}
	for _, inc := range increments.Items {
		if promotion.Final(inc.Status.Phase) {
			continue
		}
		for _, stage := range inc.Status.Stages {
			if stage.Backup != "" {
				st.inUse[stage.Backup] = true
			}
		}
	}
	var halfWay *crmv1alpha1.Restore
	for i, rs := range restores.Items {
		if !resources.RestoreFinished(rs.Status.Phase) {
			st.inUse[rs.Spec.BackupRef.Name] = true
		}
		if rs.Spec.EnvironmentRef.Name != env.Name {
			continue
		}
		if rs.Status.Phase == crmv1alpha1.RestoreRunning {
			st.restoring, st.databaseNeeded = true, true
		}
		if rs.Status.Phase == crmv1alpha1.RestoreFailed && rs.Status.PartialData &&
			(halfWay == nil || halfWay.CreationTimestamp.Before(&rs.CreationTimestamp)) {
			halfWay = &restores.Items[i]
		}
	}
	if halfWay != nil && !completedSince(restores.Items, env.Name, halfWay) {
		st.restoring = true
		st.partial = fmt.Sprintf("Restore %s failed half-way and left the data partial; the application stays stopped until a new Restore into %s completes", halfWay.Name, env.Name)
	}
	return st, nil
}

// completedSince says whether a Restore into env created after failed has completed.
func completedSince(restores []crmv1alpha1.Restore, env string, failed *crmv1alpha1.Restore) bool {
	for _, rs := range restores {
		if rs.Spec.EnvironmentRef.Name == env && rs.Status.Phase == crmv1alpha1.RestoreCompleted && failed.CreationTimestamp.Before(&rs.CreationTimestamp) {
			return true
		}
	}
	return false
}

// recordLastBackup puts the newest completed backup in status.
func recordLastBackup(env *crmv1alpha1.Environment, st *backupState) {
	for _, b := range st.backups {
		if b.Status.Phase != crmv1alpha1.BackupCompleted || b.Status.CompletedAt == nil {
			continue
		}
		if env.Status.LastBackup == nil || env.Status.LastBackup.CompletedAt == nil ||
			b.Status.CompletedAt.After(env.Status.LastBackup.CompletedAt.Time) ||
			(env.Status.LastBackup.Name == b.Name) {
			env.Status.LastBackup = &crmv1alpha1.BackupReference{Name: b.Name, CompletedAt: b.Status.CompletedAt}
		}
	}
}

// scheduleBackups creates the Backup of a due schedule slot and prunes
// expired ones; it returns when to come back. A paused project does neither.
func (r *Reconciler) scheduleBackups(ctx context.Context, p *crmv1alpha1.ImplementationProject, env *crmv1alpha1.Environment, st *backupState) (time.Duration, error) {
	if p.Spec.Paused || p.Spec.Backup == nil {
		return 0, nil
	}
	now := r.Clock.Now()
	var requeue time.Duration
	if s := policy.EffectiveSchedule(p, env); s != "" {
		sched, err := policy.Schedule(s)
		if err != nil {
			return 0, err
		}
		last := env.CreationTimestamp.Time
		if env.Status.LastScheduleTime != nil {
			last = env.Status.LastScheduleTime.Time
		}
		slot, next, due := policy.DueBackup(sched, last, now)
		if due {
			b := resources.Backup(env.Namespace, fmt.Sprintf("%s-%s", env.Name, slot.UTC().Format("20060102-1504")), env.Name, crmv1alpha1.BackupScheduled, "")
			// Not owned by the environment: a Backup outlives it, and its
			// stored data goes only by retention (which goes on for the
			// backups of an environment that is gone: the Backup
			// controller's expireOrphan) or by an explicit deletion.
			if err := r.Create(ctx, b); err != nil && !apierrors.IsAlreadyExists(err) {
				return 0, err
			}
			r.Recorder.Eventf(env, nil, corev1.EventTypeNormal, "BackupScheduled", "Backup", "scheduled Backup %s created", b.Name)
			env.Status.LastScheduleTime = &metav1.Time{Time: slot}
		}
		env.Status.NextScheduleTime = &metav1.Time{Time: next}
		requeue = next.Sub(now)
	}

	keepLast, maxAge, err := policy.EffectiveRetention(p, env)
	if err != nil {
		return 0, err
	}
	for _, name := range policy.Expired(st.backups, keepLast, maxAge, now, st.inUse) {
		b := &crmv1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: env.Namespace}}
		if err := r.Delete(ctx, b); client.IgnoreNotFound(err) != nil {
			return 0, err
		}
		log.FromContext(ctx).Info("backup expired by retention", "backup", name, "keepLast", keepLast, "maxAge", maxAge.String())
		r.Recorder.Eventf(env, nil, corev1.EventTypeNormal, "BackupExpired", "Retention", "Backup %s deleted by the retention policy", name)
	}
	if maxAge > 0 {
		// Come back when the oldest kept backup expires.
		for _, b := range st.backups {
			if b.Status.CompletedAt != nil {
				if d := b.Status.CompletedAt.Add(maxAge).Sub(now); d > 0 && (requeue == 0 || d < requeue) {
					requeue = d
				}
			}
		}
	}
	return requeue, nil
}

// environmentOfBackupOrRestore maps a Backup or Restore to its environment.
func environmentOfBackupOrRestore(_ context.Context, obj client.Object) []reconcile.Request {
	var env string
	switch o := obj.(type) {
	case *crmv1alpha1.Backup:
		env = o.Spec.EnvironmentRef.Name
	case *crmv1alpha1.Restore:
		env = o.Spec.EnvironmentRef.Name
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: obj.GetNamespace(), Name: env}}}
}

// environmentsOfErasure wakes every environment of the request's namespace:
// a hibernated database is started while an erasure waits for it.
func (r *Reconciler) environmentsOfErasure(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &crmv1alpha1.EnvironmentList{}
	if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, env := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&env)})
	}
	return reqs
}

// bootstrap fills a new environment from spec.bootstrap.fromBackup through a
// Restore it owns. It reports whether the environment is bootstrapped (or
// needs no bootstrap); until then the application stays stopped, so that it
// does not install an empty schema over which the backup would be restored.
func (r *Reconciler) bootstrap(ctx context.Context, env *crmv1alpha1.Environment) (bool, error) {
	if env.Spec.Bootstrap == nil {
		return true, nil
	}
	gen := env.Generation
	if c := meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionBootstrapped); c != nil && c.Status == metav1.ConditionTrue {
		return true, nil
	}
	rs := &crmv1alpha1.Restore{}
	err := r.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: resources.BootstrapRestoreName(env.Name)}, rs)
	if apierrors.IsNotFound(err) {
		// Confirmed: the environment was created from this backup on purpose.
		rs = resources.Restore(env.Namespace, resources.BootstrapRestoreName(env.Name), env.Spec.Bootstrap.FromBackup.Name, env.Name, env.Name)
		if err := controllerutil.SetControllerReference(env, rs, r.Scheme()); err != nil {
			return false, err
		}
		if err := r.Create(ctx, rs); err != nil && !apierrors.IsAlreadyExists(err) {
			return false, err
		}
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionBootstrapped, metav1.ConditionFalse, "Restoring",
			fmt.Sprintf("restoring Backup %s through Restore %s", env.Spec.Bootstrap.FromBackup.Name, rs.Name))
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch rs.Status.Phase {
	case crmv1alpha1.RestoreCompleted:
		// The restore treated the copy inside its load (nothing raw was ever
		// committed); a bootstrap that asked for anonymization and got a copy
		// that was not keeps the application stopped.
		if env.Spec.Bootstrap.Anonymize {
			if !rs.Status.Anonymized {
				msg := fmt.Sprintf("Restore %s loaded Backup %s without anonymizing it; the application stays stopped: delete the environment", rs.Name, env.Spec.Bootstrap.FromBackup.Name)
				kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionAnonymized, metav1.ConditionFalse, "NotAnonymized", msg)
				kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionBootstrapped, metav1.ConditionFalse, "NotAnonymized", msg)
				return false, nil
			}
			if !meta.IsStatusConditionTrue(env.Status.Conditions, crmv1alpha1.ConditionAnonymized) {
				kube.Audit(ctx, r.Recorder, env, corev1.EventTypeNormal, "Anonymized", "Anonymize", "the copy of Backup %s was anonymized while it loaded; outgoing mail and scheduled jobs are off", env.Spec.Bootstrap.FromBackup.Name)
			}
			kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionAnonymized, metav1.ConditionTrue, "Anonymized", "personal data pseudonymized while the copy loaded; outgoing mail and scheduled jobs switched off")
		}
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionBootstrapped, metav1.ConditionTrue, "Restored",
			fmt.Sprintf("restored Backup %s", env.Spec.Bootstrap.FromBackup.Name))
		r.Recorder.Eventf(env, nil, corev1.EventTypeNormal, "Bootstrapped", "Bootstrap", "environment filled from Backup %s", env.Spec.Bootstrap.FromBackup.Name)
		return true, nil
	case crmv1alpha1.RestoreFailed:
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionBootstrapped, metav1.ConditionFalse, "RestoreFailed", rs.Status.Message)
	default:
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionBootstrapped, metav1.ConditionFalse, "Restoring", rs.Status.Message)
	}
	return false, nil
}
