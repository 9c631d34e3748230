package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// The webhook's configuration is generated from these markers into
// config/webhook/manifests.yaml. failurePolicy Fail: a reference that
// cannot be checked is refused, as the API server does for its own kinds.
//
// Environment updates reach the webhook only when the ingress host or the
// mail server changes (matchConditions): every promotion patches its Environment.
// +kubebuilder:webhook:path=/validate-crm-crmops-io-v1alpha1-environment,mutating=false,failurePolicy=fail,sideEffects=None,groups=crm.crmops.io,resources=environments,verbs=create;update,versions=v1alpha1,name=environments.references.crm.crmops.io,admissionReviewVersions=v1,timeoutSeconds=5,patch=`{"matchConditions":[{"name":"created-or-host-or-mail-changed","expression":"request.operation == 'CREATE' || object.spec.?ingress.?host.orValue('') != oldObject.spec.?ingress.?host.orValue('') || has(object.spec.mail) != has(oldObject.spec.mail) || (has(object.spec.mail) && object.spec.mail != oldObject.spec.mail)"}]}`
// +kubebuilder:webhook:path=/validate-crm-crmops-io-v1alpha1-increment,mutating=false,failurePolicy=fail,sideEffects=None,groups=crm.crmops.io,resources=increments,verbs=create,versions=v1alpha1,name=increments.references.crm.crmops.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-crm-crmops-io-v1alpha1-backup,mutating=false,failurePolicy=fail,sideEffects=None,groups=crm.crmops.io,resources=backups,verbs=create,versions=v1alpha1,name=backups.references.crm.crmops.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-crm-crmops-io-v1alpha1-restore,mutating=false,failurePolicy=fail,sideEffects=None,groups=crm.crmops.io,resources=restores,verbs=create,versions=v1alpha1,name=restores.references.crm.crmops.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-crm-crmops-io-v1alpha1-erasurerequest,mutating=false,failurePolicy=fail,sideEffects=None,groups=crm.crmops.io,resources=erasurerequests,verbs=create,versions=v1alpha1,name=erasurerequests.references.crm.crmops.io,admissionReviewVersions=v1,timeoutSeconds=5

// The self-managed certificate: the Secret in the operator's namespace and
// the CA bundle of the webhook configuration. The rotator watches webhook
// configurations; it may write only its own, which a separate ClusterRole
// names (config/webhook/ca_injection_role.yaml, the chart's rbac.yaml):
// a marker cannot name it, since the chart names it after the release.
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,verbs=get;list;watch

// Certificate modes.
const (
	// CertSelf: the operator creates its CA and serving certificate in a
	// Secret, injects the CA into the webhook configuration and rotates both
	// before they expire (github.com/open-policy-agent/cert-controller).
	CertSelf = "self"
	// CertExternal: the certificate is mounted into CertDir by someone else,
	// e.g. cert-manager, which also injects the CA bundle.
	CertExternal = "external"
)

// Options configure the webhook.
type Options struct {
	CertMode string
	CertDir  string
	// Namespace of the operator, where the Secret lives.
	Namespace string
	// SecretName holds the self-managed certificate (it must exist; the
	// chart and config/webhook create it empty).
	SecretName string
	// ServiceName of the webhook; the certificate is for <service>.<namespace>.svc.
	ServiceName string
	// ConfigurationName of the ValidatingWebhookConfiguration to inject the CA into.
	ConfigurationName string
	// ExtraDNSNames of the certificate (localhost for the local cluster).
	ExtraDNSNames []string
	// AllowedIngressDomains: domains whose hosts any project's environment
	// may claim besides its project's hosting.domain.
	AllowedIngressDomains []string
	// WriteCertFiles copies the certificate from the Secret into CertDir, for
	// an operator running outside the cluster; in a pod the Secret is
	// mounted there and the kubelet keeps it current.
	WriteCertFiles bool
}

// Setup registers the webhooks, once the serving certificate exists, and a
// readiness check that passes when they serve.
func Setup(mgr ctrl.Manager, o Options) error {
	var serving atomic.Bool
	register := func() error {
		refs := &References{Reader: mgr.GetClient(), AllowedIngressDomains: o.AllowedIngressDomains}
		for _, err := range []error{
			ctrl.NewWebhookManagedBy(mgr, &crmv1alpha1.Environment{}).WithValidator(refs.Environment()).Complete(),
			ctrl.NewWebhookManagedBy(mgr, &crmv1alpha1.Increment{}).WithValidator(refs.Increment()).Complete(),
			ctrl.NewWebhookManagedBy(mgr, &crmv1alpha1.Backup{}).WithValidator(refs.Backup()).Complete(),
			ctrl.NewWebhookManagedBy(mgr, &crmv1alpha1.Restore{}).WithValidator(refs.Restore()).Complete(),
			ctrl.NewWebhookManagedBy(mgr, &crmv1alpha1.ErasureRequest{}).WithValidator(refs.ErasureRequest()).Complete(),
		} {
			if err != nil {
				return err
			}
		}
		serving.Store(true)
		return nil
	}
	if err := mgr.AddReadyzCheck("webhook", func(req *http.Request) error {
		if !serving.Load() {
			return errors.New("the webhook's certificate is not ready yet")
		}
		return mgr.GetWebhookServer().StartedChecker()(req)
	}); err != nil {
		return err
	}
	switch o.CertMode {
	case CertExternal:
		return register()
	case CertSelf:
	default:
		return fmt.Errorf("webhook certificate mode %q: want %s or %s", o.CertMode, CertSelf, CertExternal)
	}
	if o.Namespace == "" || o.SecretName == "" || o.ConfigurationName == "" || o.ServiceName == "" {
		return errors.New("a self-managed webhook certificate needs the namespace, secret, service and configuration names")
	}
	ready := make(chan struct{})
	if err := rotator.AddRotator(mgr, &rotator.CertRotator{
		SecretKey:      types.NamespacedName{Namespace: o.Namespace, Name: o.SecretName},
		CertDir:        o.CertDir,
		CAName:         "crm-operator-webhook-ca",
		CAOrganization: "crm-operator",
		DNSName:        fmt.Sprintf("%s.%s.svc", o.ServiceName, o.Namespace),
		ExtraDNSNames:  o.ExtraDNSNames,
		IsReady:        ready,
		Webhooks:       []rotator.WebhookInfo{{Name: o.ConfigurationName, Type: rotator.Validating}},
		// Every replica serves the webhook, so every replica keeps its files current.
		RequireLeaderElection: false,
	}); err != nil {
		return err
	}
	if o.WriteCertFiles {
		if err := mgr.Add(&certFiles{reader: mgr.GetAPIReader(), key: types.NamespacedName{Namespace: o.Namespace, Name: o.SecretName}, dir: o.CertDir}); err != nil {
			return err
		}
	}
	go func() {
		<-ready
		if err := register(); err != nil {
			ctrl.Log.WithName("webhook").Error(err, "registering the webhooks")
			os.Exit(1)
		}
	}()
	return nil
}

// certFiles plays the kubelet's Secret volume for an operator running
// outside the cluster: it keeps tls.crt and tls.key in dir equal to the
// Secret's, so that the webhook server's certificate watcher picks up
// rotations.
type certFiles struct {
	reader client.Reader
	key    types.NamespacedName
	dir    string
}

// NeedLeaderElection: every replica serves the webhook.
func (c *certFiles) NeedLeaderElection() bool { return false }

func (c *certFiles) Start(ctx context.Context) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	return wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		s := &corev1.Secret{}
		if err := c.reader.Get(ctx, c.key, s); err != nil {
			return false, nil // not there yet, or a transient error: look again
		}
		for _, name := range []string{"tls.key", "tls.crt"} {
			data := s.Data[name]
			if len(data) == 0 {
				return false, nil
			}
			path := filepath.Join(c.dir, name)
			if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
				continue
			}
			if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
				return false, err
			}
			if err := os.Rename(path+".tmp", path); err != nil {
				return false, err
			}
		}
		return false, nil
	})
}
