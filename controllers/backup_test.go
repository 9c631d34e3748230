package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/agent"
	"github.com/crmops/crm-operator/internal/resources"
)

// backupProject is an Odoo project with an S3 backup target and a retention policy.
func backupProject(name string, keepLast int32) *crmv1alpha1.ImplementationProject {
	p := newProject(name)
	p.Spec.Product = crmv1alpha1.Product{Name: crmv1alpha1.ProductOdoo, Version: "18.0"}
	p.Spec.Backup = &crmv1alpha1.BackupPolicy{
		Schedule:  "@daily",
		Retention: crmv1alpha1.BackupRetention{KeepLast: ptr.To(keepLast)},
		Target: crmv1alpha1.BackupTarget{S3: &crmv1alpha1.S3Target{
			Endpoint: "https://s3.eu-central-1.example.net", Bucket: "crm-backups", Region: "eu-central-1", SecretName: "backup-s3",
		}},
	}
	return p
}

// finishJob plays the Job controller and kubelet: a pod of the Job whose
// agent container terminated with msg, and the Job's final condition.
func finishJob(ctx context.Context, g Gomega, ns, name string, res agent.Result, succeeded bool) {
	agentPodTerminated(ctx, g, ns, name, res, succeeded)
	completeJob(ctx, g, ns, name, succeeded)
}

// agentPodTerminated plays the kubelet: a pod of the Job whose agent
// container terminated with res as its message.
func agentPodTerminated(ctx context.Context, g Gomega, ns, name string, res agent.Result, succeeded bool) {
	phase := corev1.PodSucceeded
	if !succeeded {
		phase = corev1.PodFailed
	}
	agentPod(ctx, g, ns, name, res, succeeded, phase)
}

// agentPod plays the kubelet: a pod of the Job in phase whose agent
// container terminated with res as its message. The kubelet reports a
// container's end before its pod's phase (it tears the sandbox down first).
func agentPod(ctx context.Context, g Gomega, ns, name string, res agent.Result, succeeded bool, phase corev1.PodPhase) {
	agentPodLabelled(ctx, g, ns, name, nil, res, succeeded, phase)
}

// agentPodLabelled is agentPod with labels instead of the Job template's
// (nil: the template's); the Job's name label is always added.
func agentPodLabelled(ctx context.Context, g Gomega, ns, name string, labels map[string]string, res agent.Result, succeeded bool, phase corev1.PodPhase) {
	job := &batchv1.Job{}
	g.Expect(k8s.Get(ctx, key(ns, name), job)).To(Succeed())
	if labels == nil {
		labels = job.Spec.Template.Labels
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-x1", Namespace: ns, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))}},
		Spec: job.Spec.Template.Spec,
	}
	pod.Labels["batch.kubernetes.io/job-name"] = name
	if err := k8s.Create(ctx, pod); err != nil && !apierrors.IsAlreadyExists(err) {
		g.Expect(err).NotTo(HaveOccurred())
	}
	exit := int32(0)
	if !succeeded {
		exit = 1
	}
	now := metav1.Now()
	pod.Status = corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "agent", Image: pod.Spec.Containers[0].Image,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: exit, Message: string(agent.EncodeResult(res)), StartedAt: now, FinishedAt: now,
		}},
	}}}
	g.Expect(k8s.Status().Update(ctx, pod)).To(Succeed())
}

// runningBackup creates a manual Backup of env and waits until its Job runs.
func runningBackup(ctx context.Context, g Gomega, ns, name, env string) *crmv1alpha1.Backup {
	b := &crmv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       crmv1alpha1.BackupSpec{EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: env}},
	}
	g.Expect(k8s.Create(ctx, b)).To(Succeed())
	g.Eventually(backupPhase(ctx, b)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupRunning))
	return b
}

// completedBackup takes a Backup of env through its Job to Completed, stored at location.
func completedBackup(ctx context.Context, g Gomega, ns, name, env, location string) *crmv1alpha1.Backup {
	b := runningBackup(ctx, g, ns, name, env)
	g.Eventually(func(g Gomega) {
		finishJob(ctx, g, ns, b.Status.JobName, agent.Result{Location: location, Size: 1024}, true)
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(backupPhase(ctx, b)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupCompleted))
	return b
}

func backupPhase(ctx context.Context, b *crmv1alpha1.Backup) func() crmv1alpha1.BackupPhase {
	return func() crmv1alpha1.BackupPhase {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
			return "missing"
		}
		return b.Status.Phase
	}
}

func readyEnvironment(ctx context.Context, t *testing.T, p *crmv1alpha1.ImplementationProject, name string, stage crmv1alpha1.Stage) *crmv1alpha1.Environment {
	t.Helper()
	g := NewWithT(t)
	env := newEnvironment(p.Name, name, stage)
	g.Expect(k8s.Create(ctx, env)).To(Succeed())
	g.Eventually(exists(ctx, &appsv1.StatefulSet{}, p.Name, resources.DatabaseName(name))).WithTimeout(wait).Should(Succeed())
	markUntilReady(ctx, g, p.Name, name)
	return env
}

func TestBackupRunsTheAgentAndRecordsItsResult(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("backups", 2)
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)

	b := runningBackup(ctx, g, ns, "manual-1", "test")
	g.Expect(b.Spec.Reason).To(Equal(crmv1alpha1.BackupManual))

	// The Job: the agent from the operator image, run in the database image.
	job := &batchv1.Job{}
	g.Expect(k8s.Get(ctx, key(ns, b.Status.JobName), job)).To(Succeed())
	spec := job.Spec.Template.Spec
	g.Expect(spec.InitContainers[0].Image).To(Equal("registry.example.com/crm-operator:test"))
	g.Expect(spec.InitContainers[0].Command).To(Equal([]string{"/crm-agent", "install", "/agent"}))
	c := spec.Containers[0]
	g.Expect(c.Image).To(HavePrefix("postgres:"))
	args := strings.Join(c.Command, " ")
	g.Expect(args).To(HavePrefix("/agent/crm-agent backup --name manual-1"))
	g.Expect(args).To(ContainSubstring("--engine postgresql"))
	g.Expect(args).To(ContainSubstring("--s3-bucket crm-backups --s3-prefix backups/test"))
	g.Expect(args).To(ContainSubstring("--files-dir /files"))
	g.Expect(c.Env).To(ContainElement(HaveField("ValueFrom.SecretKeyRef.Name", "backup-s3")))
	g.Expect(c.Env).To(ContainElement(And(HaveField("Name", "DB_PASSWORD"), HaveField("ValueFrom.SecretKeyRef.Name", resources.CredentialsName("test")))))
	g.Expect(*job.Spec.BackoffLimit).To(Equal(int32(2)))
	g.Expect(metav1.IsControlledBy(job, b)).To(BeTrue())

	res := agent.Result{Location: "s3://crm-backups/backups/test/manual-1", Size: 3 << 20, Checksum: "sha256:abc",
		Objects: []agent.Object{{Name: agent.DatabaseObject, Size: 3 << 20, SHA256: strings.Repeat("a", 64)}}}
	// The Job controller's first verdict (SuccessCriteriaMet) is enough: the
	// agent's result is in its pod, and Complete follows only after the Job
	// controller has also cleaned up its pods.
	g.Eventually(func(g Gomega) {
		agentPodTerminated(ctx, g, ns, job.Name, res, true)
		successCriteriaMet(ctx, g, ns, job.Name)
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(backupPhase(ctx, b)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupCompleted))
	g.Expect(b.Status.Location).To(Equal(res.Location))
	g.Expect(b.Status.SizeBytes).To(Equal(int64(3 << 20)))
	g.Expect(b.Status.Size).To(Equal("3Mi"))
	g.Expect(b.Status.Checksum).To(Equal("sha256:abc"))
	g.Expect(b.Status.ProductVersion).To(Equal("18.0"))
	g.Expect(b.Status.CompletedAt).NotTo(BeNil())

	env := &crmv1alpha1.Environment{}
	g.Eventually(func() string {
		_ = k8s.Get(ctx, key(ns, "test"), env)
		if env.Status.LastBackup == nil {
			return ""
		}
		return env.Status.LastBackup.Name
	}).WithTimeout(wait).Should(Equal("manual-1"))

	t.Run("a hibernated environment's database runs only for the dump", func(t *testing.T) {
		g := NewWithT(t)
		sleeper := readyEnvironment(ctx, t, p, "sleeper", crmv1alpha1.StageTest)
		updateEnvironment(ctx, g, sleeper, func() { sleeper.Spec.Hibernate = true })
		dbReplicas := func() int32 {
			s := &appsv1.StatefulSet{}
			_ = k8s.Get(ctx, key(ns, resources.DatabaseName("sleeper")), s)
			return ptr.Deref(s.Spec.Replicas, -1)
		}
		g.Eventually(dbReplicas).WithTimeout(wait).Should(BeZero())
		g.Eventually(func(g Gomega) { markWorkloads(ctx, g, ns, "sleeper") }).WithTimeout(wait).Should(Succeed())

		hb := &crmv1alpha1.Backup{
			ObjectMeta: metav1.ObjectMeta{Name: "sleeper-manual", Namespace: ns},
			Spec:       crmv1alpha1.BackupSpec{EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: "sleeper"}},
		}
		g.Expect(k8s.Create(ctx, hb)).To(Succeed())
		g.Eventually(dbReplicas).WithTimeout(wait).Should(Equal(int32(1)))
		g.Eventually(backupPhase(ctx, hb)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupPending))
		g.Consistently(backupPhase(ctx, hb)).WithTimeout(time.Second).Should(Equal(crmv1alpha1.BackupPending), "the Job waits for the database")
		g.Eventually(func(g Gomega) { markWorkloads(ctx, g, ns, "sleeper") }).WithTimeout(wait).Should(Succeed())
		g.Eventually(backupPhase(ctx, hb)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupRunning))
		g.Eventually(func(g Gomega) {
			finishJob(ctx, g, ns, hb.Status.JobName, agent.Result{Location: "s3://crm-backups/backups/sleeper/sleeper-manual", Size: 10}, true)
		}).WithTimeout(wait).Should(Succeed())
		g.Eventually(backupPhase(ctx, hb)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupCompleted))
		g.Eventually(dbReplicas).WithTimeout(wait).Should(BeZero())
	})

	t.Run("a failed agent fails the backup with its error", func(t *testing.T) {
		g := NewWithT(t)
		bad := runningBackup(ctx, g, ns, "manual-bad", "test")
		g.Eventually(func(g Gomega) {
			finishJob(ctx, g, ns, bad.Status.JobName, agent.Result{Error: "database dump: pg_dump: connection refused"}, false)
		}).WithTimeout(wait).Should(Succeed())
		g.Eventually(backupPhase(ctx, bad)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupFailed))
		g.Expect(bad.Status.Error).To(ContainSubstring("connection refused"))
	})

	t.Run("a hung agent fails the backup when its Job's deadline passes", func(t *testing.T) {
		g := NewWithT(t)
		hung := runningBackup(ctx, g, ns, "manual-hung", "test")
		job := &batchv1.Job{}
		g.Expect(k8s.Get(ctx, key(ns, hung.Status.JobName), job)).To(Succeed())
		// The deadline and the retry limit are what bound a hanging or failing agent.
		g.Expect(job.Spec.ActiveDeadlineSeconds).NotTo(BeNil())
		g.Expect(*job.Spec.BackoffLimit).To(Equal(int32(2)))
		// The Job controller's verdict at the deadline: no pod ever reported.
		now := metav1.Now()
		job.Status.StartTime = &now
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "DeadlineExceeded", Message: "Job was active longer than specified deadline", LastTransitionTime: now},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "DeadlineExceeded", Message: "Job was active longer than specified deadline", LastTransitionTime: now},
		}
		g.Expect(k8s.Status().Update(ctx, job)).To(Succeed())
		g.Eventually(backupPhase(ctx, hung)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupFailed))
		g.Expect(hung.Status.Error).To(ContainSubstring("deadline"))
		g.Expect(meta.FindStatusCondition(hung.Status.Conditions, crmv1alpha1.ConditionReady).Reason).To(Equal("AgentFailed"))
	})

	t.Run("a Job deleted mid-run fails the backup and is not started again", func(t *testing.T) {
		g := NewWithT(t)
		gone := runningBackup(ctx, g, ns, "manual-gone", "test")
		job := &batchv1.Job{}
		g.Expect(k8s.Get(ctx, key(ns, gone.Status.JobName), job)).To(Succeed())
		g.Expect(k8s.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
		g.Eventually(backupPhase(ctx, gone)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupFailed))
		g.Expect(meta.FindStatusCondition(gone.Status.Conditions, crmv1alpha1.ConditionReady).Reason).To(Equal("JobDeleted"))
		// Failed is final: no second Job, however long we look.
		g.Consistently(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, key(ns, gone.Status.JobName), &batchv1.Job{}))
		}).WithTimeout(3 * time.Second).Should(BeTrue())
	})

	t.Run("retention deletes the oldest backups with their data", func(t *testing.T) {
		g := NewWithT(t)
		// Two more completed backups: keepLast 2 expires manual-1, the oldest.
		for _, name := range []string{"manual-2", "manual-3"} {
			nb := runningBackup(ctx, g, ns, name, "test")
			r := res
			r.Location = strings.Replace(res.Location, "manual-1", name, 1)
			g.Eventually(func(g Gomega) { finishJob(ctx, g, ns, nb.Status.JobName, r, true) }).WithTimeout(wait).Should(Succeed())
			g.Eventually(backupPhase(ctx, nb)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupCompleted))
		}
		// The Backup waits on a crm-agent delete Job for its stored data.
		deleteJob := resources.AgentJobName("manual-1", "delete")
		g.Eventually(exists(ctx, &batchv1.Job{}, ns, deleteJob)).WithTimeout(wait).Should(Succeed())
		dj := &batchv1.Job{}
		g.Expect(k8s.Get(ctx, key(ns, deleteJob), dj)).To(Succeed())
		g.Expect(strings.Join(dj.Spec.Template.Spec.Containers[0].Command, " ")).To(HavePrefix("/agent/crm-agent delete --name manual-1"))
		g.Expect(k8s.Get(ctx, key(ns, "manual-1"), &crmv1alpha1.Backup{})).To(Succeed(), "deleted before its data")
		g.Eventually(func(g Gomega) {
			finishJob(ctx, g, ns, deleteJob, agent.Result{Location: res.Location}, true)
		}).WithTimeout(wait).Should(Succeed())
		g.Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, key(ns, "manual-1"), &crmv1alpha1.Backup{}))
		}).WithTimeout(wait).Should(BeTrue())
		for _, kept := range []string{"manual-2", "manual-3"} {
			g.Expect(k8s.Get(ctx, key(ns, kept), &crmv1alpha1.Backup{})).To(Succeed())
		}
	})

	t.Run("the schedule creates a backup when a slot falls due", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(k8s.Get(ctx, key(ns, "test"), env)).To(Succeed())
		g.Expect(env.Status.NextScheduleTime).NotTo(BeNil())
		due := env.Status.NextScheduleTime.Time
		// Move the operator's clock past the next daily slot and wake the environment.
		clockOffset.Store(int64(time.Until(due) + time.Minute))
		t.Cleanup(func() { clockOffset.Store(0) })
		updateEnvironment(ctx, g, env, func() { env.Spec.Version = "18.0" }) // a spec change wakes the reconciler
		name := "test-" + due.UTC().Format("20060102-1504")
		scheduled := &crmv1alpha1.Backup{}
		g.Eventually(exists(ctx, scheduled, ns, name)).WithTimeout(wait).Should(Succeed())
		g.Expect(scheduled.Spec.Reason).To(Equal(crmv1alpha1.BackupScheduled))
		// Not garbage-collected with the environment: its data goes by retention or explicitly.
		g.Expect(scheduled.OwnerReferences).To(BeEmpty(), "a scheduled Backup is owned by its environment")
		g.Eventually(func() time.Time {
			_ = k8s.Get(ctx, key(ns, "test"), env)
			if env.Status.LastScheduleTime == nil {
				return time.Time{}
			}
			return env.Status.LastScheduleTime.Time
		}).WithTimeout(wait).Should(BeTemporally("==", due))
	})
}

func TestBackupsOutliveTheirEnvironment(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("orphans", 10)
	p.Spec.Backup.Retention.MaxAge = "720h"
	createProject(ctx, t, p)
	ns := p.Name
	env := readyEnvironment(ctx, t, p, "training", crmv1alpha1.StageTraining)
	b := completedBackup(ctx, g, ns, "training-before-course", "training", "s3://crm-backups/orphans/training/training-before-course")

	g.Expect(k8s.Delete(ctx, env)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, key(ns, "training"), &crmv1alpha1.Environment{}))
	}).
		WithTimeout(wait).Should(BeTrue())
	g.Consistently(backupPhase(ctx, b)).WithTimeout(time.Second).Should(Equal(crmv1alpha1.BackupCompleted))

	// Past the project's maximum age the backup of the environment that is
	// gone is deleted, its stored data first (a delete Job), as retention
	// does for the backups of a living environment.
	clockOffset.Store(int64(721 * time.Hour))
	t.Cleanup(func() { clockOffset.Store(0) })
	g.Eventually(func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
			return err
		}
		b.Annotations = map[string]string{"wake": "1"}
		return k8s.Update(ctx, b)
	}).WithTimeout(wait).Should(Succeed())
	del := resources.AgentJobName(b.Name, "delete")
	job := &batchv1.Job{}
	g.Eventually(exists(ctx, job, ns, del)).WithTimeout(wait).Should(Succeed(), "the expired backup's data is not deleted")
	g.Expect(strings.Join(job.Spec.Template.Spec.Containers[0].Command, " ")).To(ContainSubstring("--s3-prefix orphans/training"))
	for _, v := range job.Spec.Template.Spec.Volumes {
		g.Expect(v.PersistentVolumeClaim).To(BeNil(), "the delete Job waits for the claim of an environment that is gone")
	}
	g.Eventually(func(g Gomega) {
		finishJob(ctx, g, ns, del, agent.Result{Location: "s3://crm-backups/orphans/training/training-before-course"}, true)
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(b), b)) }).
		WithTimeout(wait).Should(BeTrue())
}

// After a watch broke (an API server restart), the Job's informer can see
// the Job finished while the pods' informer still backs off: the result is
// then read from the API server, never taken for missing. The pod here
// lacks the operator's labels, so the cache never holds it, as a lagging
// cache would not.
func TestAJobsResultIsReadLiveWhenTheCacheLacksIt(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("backups-live", 2)
	createProject(ctx, t, p)
	ns := p.Name
	readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
	b := runningBackup(ctx, g, ns, "manual-live", "test")

	res := agent.Result{Location: "s3://crm-backups/backups-live/test/manual-live", Size: 2048}
	agentPodLabelled(ctx, g, ns, b.Status.JobName, map[string]string{}, res, true, corev1.PodSucceeded)
	g.Eventually(func(g Gomega) { completeJob(ctx, g, ns, b.Status.JobName, true) }).WithTimeout(wait).Should(Succeed())
	g.Eventually(backupPhase(ctx, b)).WithTimeout(wait).Should(Equal(crmv1alpha1.BackupCompleted), "the Backup failed: %v", b.Status.Conditions)
	g.Expect(b.Status.Location).To(Equal(res.Location))
}

// 11: a deleted project's stored backups do not live for ever: its namespace
// is kept while they exist, and each is deleted, with its stored data, at
// the maximum age it recorded when it completed, through the target it
// recorded (the project that named both is gone).
func TestBackupsOfADeletedProjectStillExpire(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("forgotten", 10)
	p.Spec.Backup.Retention.MaxAge = "30d"
	createProject(ctx, t, p)
	ns := p.Name
	env := readyEnvironment(ctx, t, p, "test", crmv1alpha1.StageTest)
	b := completedBackup(ctx, g, ns, "last", "test", "s3://crm-backups/forgotten/test/last")
	g.Expect(b.Status.ExpiresAt).NotTo(BeNil())
	g.Expect(b.Status.ExpiresAt.Sub(b.Status.CompletedAt.Time)).To(Equal(30 * 24 * time.Hour))
	g.Expect(b.Status.Target).To(Equal(&p.Spec.Backup.Target))

	g.Expect(k8s.Delete(ctx, env)).To(Succeed())
	g.Eventually(exists(ctx, &crmv1alpha1.Environment{}, ns, "test")).WithTimeout(wait).ShouldNot(Succeed())
	g.Expect(k8s.Delete(ctx, p)).To(Succeed())
	g.Eventually(exists(ctx, &crmv1alpha1.ImplementationProject{}, "", ns)).WithTimeout(wait).ShouldNot(Succeed())
	// Kept for its backups: released from the project, so that the garbage
	// collector leaves it (envtest runs none; the e2e suite's cluster does).
	namespace := &corev1.Namespace{}
	g.Expect(k8s.Get(ctx, key("", ns), namespace)).To(Succeed())
	g.Expect(namespace.OwnerReferences).To(BeEmpty(), "the namespace, and with it the backups, would go with the project")
	g.Expect(namespace.Labels).To(HaveKeyWithValue(crmv1alpha1.LabelRetainedData, "true"))
	g.Consistently(exists(ctx, &crmv1alpha1.Backup{}, ns, "last")).WithTimeout(2 * time.Second).Should(Succeed())

	// The maximum age passes: the Backup goes, its data first.
	clockOffset.Store(int64(31 * 24 * time.Hour))
	t.Cleanup(func() { clockOffset.Store(0) })
	g.Eventually(func() error { // wakes it (its requeue is set for the real time)
		cur := &crmv1alpha1.Backup{}
		if err := k8s.Get(ctx, key(ns, "last"), cur); err != nil {
			return err
		}
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		cur.Annotations["wake"] = "1"
		return k8s.Update(ctx, cur)
	}).WithTimeout(wait).Should(Succeed())
	del := resources.AgentJobName("last", "delete")
	job := &batchv1.Job{}
	g.Eventually(exists(ctx, job, ns, del)).WithTimeout(wait).Should(Succeed())
	g.Expect(strings.Join(job.Spec.Template.Spec.Containers[0].Command, " ")).To(ContainSubstring("--s3-bucket crm-backups"))
	g.Eventually(func(g Gomega) {
		finishJob(ctx, g, ns, del, agent.Result{Location: "s3://crm-backups/forgotten/test/last"}, true)
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(exists(ctx, &crmv1alpha1.Backup{}, ns, "last")).WithTimeout(wait).ShouldNot(Succeed())
}
