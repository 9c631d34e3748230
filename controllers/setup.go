// Package controllers wires the operator: its options, what its cache holds,
// and one reconciler per kind of the crm.crmops.io API, each in its own
// package below this one (project, environment, increment, and backup,
// restore and erasure over the shared agentjob core).
package controllers

import (
	"context"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/controllers/agentjob"
	"github.com/crmops/crm-operator/controllers/backup"
	"github.com/crmops/crm-operator/controllers/environment"
	"github.com/crmops/crm-operator/controllers/erasure"
	"github.com/crmops/crm-operator/controllers/fleet"
	"github.com/crmops/crm-operator/controllers/increment"
	"github.com/crmops/crm-operator/controllers/project"
	"github.com/crmops/crm-operator/controllers/restore"
	"github.com/crmops/crm-operator/controllers/shared"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/resources"
)

// collector is the fleet collector registered last, of the process's
// latest manager: a manager started again in the same process (tests
// restart it mid-promotion) replaces it, so that metrics are read from the
// cache that runs, not from the stopped one.
var collector struct {
	sync.Mutex
	registered prometheus.Collector
}

// The metrics endpoint authenticates and authorizes its clients (--metrics-secure).
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// DefaultAgentImage is the operator's image, which carries crm-agent.
const DefaultAgentImage = "ghcr.io/crmops/crm-operator:v0.1.0"

// Options tune every reconciler.
type Options struct {
	// MaxConcurrentReconciles is the number of workers of the project and
	// environment controllers, which converge the fleet.
	MaxConcurrentReconciles int
	// PromotionConcurrency is the number of workers of the increment,
	// backup, restore and erasure controllers (0: MaxConcurrentReconciles).
	// A sprint's end brings many promotions at once, each a chain of short
	// reconciles that mostly wait on the API server: with few workers they
	// wait in the queue instead.
	PromotionConcurrency int
	// IngressNamespace is where the cluster's ingress controller runs; the
	// environments' network policies admit traffic from it.
	IngressNamespace string
	// AgentImage holds crm-agent at /crm-agent (the operator's own image).
	AgentImage string
	// AgentImageVolume mounts AgentImage into agent Jobs as an image volume
	// (Kubernetes 1.35+, containerd 2.1+) instead of an init container's copy.
	AgentImageVolume bool
	// Clock tells the time for schedules and retention; nil is time.Now.
	Clock kube.Clock
	// Tolerations are added to every pod the operator creates (e.g. the
	// simulated nodes' taint in the local cluster).
	Tolerations []corev1.Toleration
	// Images is where the default images of those pods are pulled from: a
	// registry mirror, per-component overrides.
	Images resources.Images
	// MailReader, when set, is the product owner's portal: the mail
	// catchers admit it to their web API.
	MailReader *resources.MailReader
}

// CacheOptions caches only the objects the operator labelled as its own (a
// cluster's Secrets, Deployments and Services are not held in memory),
// without their managed fields, and the children it only applies slim.
//
// slim holds the children the operator only applies without their spec
// (internal/kube/slimcache.go): about a third of the memory at a thousand projects, for
// one read per child after a restart.
func CacheOptions(slim bool) cache.Options {
	own := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{crmv1alpha1.LabelManagedBy: crmv1alpha1.ManagedByValue})}
	byObject := map[client.Object]cache.ByObject{
		&corev1.Secret{}: own,
		&batchv1.Job{}:   own,
	}
	for _, obj := range kube.SlimKinds() {
		byObject[obj] = own
		if slim {
			byObject[obj] = cache.ByObject{Label: own.Label, Transform: kube.SlimTransform}
		}
	}
	// Of pods, only those of the operator's Jobs are read (the agent's
	// termination message is its result; a pod that cannot start is named,
	// kube.JobCannotStart): the application and database pods, most of a
	// cluster's pods, stay out of memory.
	jobPods, err := labels.Parse(fmt.Sprintf("%s=%s,%s in (%s,%s,%s)", crmv1alpha1.LabelManagedBy, crmv1alpha1.ManagedByValue,
		resources.LabelComponent, resources.ComponentAgent, resources.ComponentMigration, resources.ComponentInit))
	if err != nil {
		panic(err) // a constant selector
	}
	byObject[&corev1.Pod{}] = cache.ByObject{Label: jobPods}
	// Managed fields are a large part of every object and the operator never
	// reads them (it compares only the fields it applies).
	return cache.Options{ByObject: byObject, DefaultTransform: cache.TransformStripManagedFields()}
}

// SetupWithManager registers every reconciler of the operator with mgr.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	collector.Lock()
	if collector.registered != nil {
		ctrlmetrics.Registry.Unregister(collector.registered)
	}
	collector.registered = fleet.NewCollector(mgr.GetCache())
	ctrlmetrics.Registry.MustRegister(collector.registered)
	collector.Unlock()
	if opts.IngressNamespace == "" {
		opts.IngressNamespace = "ingress-nginx"
	}
	if opts.AgentImage == "" {
		opts.AgentImage = DefaultAgentImage
	}
	promotionWorkers := opts.PromotionConcurrency
	if promotionWorkers <= 0 {
		promotionWorkers = opts.MaxConcurrentReconciles
	}
	applied := kube.NewAppliedRecords()
	if err := applied.ForgetDeleted(context.Background(), mgr.GetCache()); err != nil {
		return err
	}
	deps := func(name string, workers int) shared.Deps {
		return shared.Deps{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder(name),
			Workers: workers, Tolerations: opts.Tolerations, Images: opts.Images, Clock: opts.Clock,
		}
	}
	agentDeps := func(name string, workers int) agentjob.Deps {
		return agentjob.Deps{Deps: deps(name, workers), AgentImage: opts.AgentImage, AgentImageVolume: opts.AgentImageVolume}
	}
	reconcilers := []interface{ SetupWithManager(ctrl.Manager) error }{
		&project.Reconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Applied: applied,
			Recorder: mgr.GetEventRecorder("implementationproject-controller"), Workers: opts.MaxConcurrentReconciles,
		},
		&environment.Reconciler{Deps: deps("environment-controller", opts.MaxConcurrentReconciles), Applied: applied, IngressNamespace: opts.IngressNamespace, MailReader: opts.MailReader},
		&backup.Reconciler{Deps: agentDeps("backup-controller", promotionWorkers)},
		&restore.Reconciler{Deps: agentDeps("restore-controller", promotionWorkers)},
		&erasure.Reconciler{Deps: agentDeps("erasurerequest-controller", promotionWorkers)},
		&increment.Reconciler{Deps: deps("increment-controller", promotionWorkers)},
	}
	for _, r := range reconcilers {
		if err := r.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	return nil
}
