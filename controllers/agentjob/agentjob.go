// Package agentjob is the core the kinds that run crm-agent in Jobs share
// (Backup, Restore, ErasureRequest, and the environment's and increment's
// own agent steps): the reconcile frame, what a Job needs to know of its
// environment, and how a Job's outcome is read.
package agentjob

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crmops/crm-operator/internal/kube"
)

// Deps is what every agent-Job reconciler is built with.
type Deps struct {
	client.Client
	// APIReader reads what the cache does not hold or may hold late.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// AgentImage holds crm-agent at /crm-agent.
	AgentImage string
	// Workers is the number of concurrent reconciles.
	Workers int
	// Tolerations are added to every pod the operator creates.
	Tolerations []corev1.Toleration
	Clock       kube.Clock
}

// Kind is what one agent-Job kind adds to the shared Reconcile frame.
type Kind[T client.Object] interface {
	// Settle handles an object that takes no step: one being deleted, or
	// whose work is over. done false goes on to Step.
	Settle(ctx context.Context, obj T) (done bool, res ctrl.Result, err error)
	// Step advances obj's status in memory by what it observes and starts.
	Step(ctx context.Context, obj T) (ctrl.Result, error)
	// Status returns obj's status (a copy, compared before and after the
	// step) and where its observedGeneration is kept.
	Status(obj T) (status any, observedGeneration *int64)
}

// Reconcile is the frame of every agent-Job kind: read the object, let
// Settle end what takes no step, run one Step, stamp observedGeneration and
// write the status once, only when it changed.
func Reconcile[T client.Object](ctx context.Context, c client.Client, key types.NamespacedName, obj T, kind Kind[T]) (ctrl.Result, error) {
	if err := c.Get(ctx, key, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if done, res, err := kind.Settle(ctx, obj); done || err != nil {
		return res, err
	}
	before := obj.DeepCopyObject().(T)
	beforeStatus, _ := kind.Status(before)
	result, err := kind.Step(ctx, obj)
	_, observed := kind.Status(obj)
	*observed = obj.GetGeneration()
	status, _ := kind.Status(obj)
	if perr := kube.PatchStatus(ctx, c, obj, before, status, beforeStatus); perr != nil && err == nil {
		err = perr
	}
	return result, err
}
