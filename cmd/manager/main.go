// Command manager runs the crm-operator controllers.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/controllers"
	"github.com/crmops/crm-operator/internal/resources"
	"github.com/crmops/crm-operator/internal/webhook"
)

func main() {
	var (
		metricsAddr      string
		probeAddr        string
		leaderElect      bool
		leaseDuration    time.Duration
		renewDeadline    time.Duration
		retryPeriod      time.Duration
		concurrency      int
		promotionWorkers int
		kubeAPIQPS       float64
		kubeAPIBurst     int
		leaderElectNS    string
		ingressNS        string
		portalNS         string
		agentImage       string
		agentImageVolume bool
		tolerations      tolerationFlag
		imageMirrors     repeatedFlag
		imageOverrides   repeatedFlag
		metricsSecure    bool
		metricsCert      string
		webhookPort      int
		webhookOpts      webhook.Options
		webhookDNS       string
		syncPeriod       time.Duration
		pprofAddr        string
		slimCache        bool
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; \"0\" disables it.")
	flag.BoolVar(&metricsSecure, "metrics-secure", false, "Serve metrics over HTTPS and only to clients the API server authenticates and authorizes "+
		"(get on the non-resource URL /metrics), as the Helm chart does.")
	flag.StringVar(&metricsCert, "metrics-cert-dir", "", "Directory with tls.crt and tls.key for the metrics endpoint; empty: a self-signed certificate.")
	flag.IntVar(&webhookPort, "webhook-port", 0, "Port of the validating webhook that checks references (projects, environments, backups); 0 disables it.")
	flag.StringVar(&webhookOpts.CertMode, "webhook-cert-mode", webhook.CertSelf, "self: the operator creates, injects and rotates its certificate; external: cert-manager (or you) mount it into --webhook-cert-dir.")
	flag.StringVar(&webhookOpts.CertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Directory of the webhook's tls.crt and tls.key.")
	flag.StringVar(&webhookOpts.SecretName, "webhook-secret", "crm-operator-webhook-tls", "Secret in the operator's namespace holding the self-managed certificate.")
	flag.StringVar(&webhookOpts.ServiceName, "webhook-service", "crm-operator-webhook", "Service of the webhook (the certificate names <service>.<namespace>.svc).")
	flag.StringVar(&webhookOpts.ConfigurationName, "webhook-configuration", "crm-operator-references", "ValidatingWebhookConfiguration to inject the CA bundle into.")
	flag.BoolVar(&webhookOpts.WriteCertFiles, "webhook-write-cert-files", false, "Copy the self-managed certificate from its Secret into --webhook-cert-dir (an operator running outside the cluster; in a pod the Secret is mounted there).")
	flag.StringVar(&webhookDNS, "webhook-extra-dns-names", "", "Comma-separated extra DNS names of the self-managed certificate (localhost for a local run).")
	flag.DurationVar(&syncPeriod, "sync-period", 10*time.Hour, "How often every watched object is reconciled again although nothing changed (make bench shortens it to prove that a resync writes nothing).")
	flag.BoolVar(&slimCache, "slim-cache", true, "Cache the children the operator only applies (Deployments, Services, claims, policies, ...) without their spec, "+
		"with a fingerprint to detect changes: about a third of the memory at 1000 projects, for one API read per child after a restart.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address of Go's pprof endpoints (/debug/pprof/heap, ...); empty disables them (make bench BENCH_PPROF=1 saves a heap profile).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader so that several replicas can run with one active.")
	flag.StringVar(&leaderElectNS, "leader-election-namespace", "", "Namespace of the leader-election Lease; defaults to the pod's namespace.")
	flag.DurationVar(&leaseDuration, "leader-elect-lease-duration", 8*time.Second, "How long a leader's lease lasts without renewal.")
	flag.DurationVar(&renewDeadline, "leader-elect-renew-deadline", 6*time.Second, "How long the leader keeps trying to renew before it steps down.")
	flag.DurationVar(&retryPeriod, "leader-elect-retry-period", time.Second, "How often candidates try to take the lease.")
	flag.IntVar(&concurrency, "concurrency", 32, "Workers of the project and environment controllers (their reconciles mostly wait on the API server).")
	flag.IntVar(&promotionWorkers, "promotion-concurrency", 32, "Workers of the increment, backup, restore and erasure controllers, whose reconciles mostly wait on the API server.")
	// The default client limit (QPS 20) makes convergence of many projects
	// ~14x slower than the API server allows; see docs/operator-guide/manager-flags.md#throughput-and-memory.
	flag.Float64Var(&kubeAPIQPS, "kube-api-qps", 200, "Queries per second to the API server.")
	flag.IntVar(&kubeAPIBurst, "kube-api-burst", 400, "Burst of queries to the API server.")
	flag.StringVar(&ingressNS, "ingress-namespace", "ingress-nginx", "Namespace of the cluster's ingress controller; environments admit traffic from it.")
	flag.Func("allowed-ingress-domains", "Comma-separated domains whose hosts any project's environments may use in spec.ingress.host, besides the project's own hosting.domain.", func(v string) error {
		for _, d := range strings.Split(v, ",") {
			if d = strings.TrimSpace(d); d != "" {
				webhookOpts.AllowedIngressDomains = append(webhookOpts.AllowedIngressDomains, d)
			}
		}
		return nil
	})
	flag.StringVar(&portalNS, "portal-namespace", "", "Namespace of the product owner's portal (the chart's portal.enabled): the test environments' mail catchers admit its pods, "+
		"with the htpasswd line in PORTAL_MAIL_HTPASSWD (the chart's generated Secret), to show the product owners the caught mail.")
	flag.StringVar(&agentImage, "agent-image", controllers.DefaultAgentImage, "Image holding crm-agent at /crm-agent, run in backup and restore Jobs.")
	flag.BoolVar(&agentImageVolume, "agent-image-volume", false, "Mount --agent-image into backup and restore Jobs as an image volume instead of copying crm-agent in an init container "+
		"(one container start less per Job; needs Kubernetes 1.35+ and containerd 2.1+ or another runtime that mounts image volumes executable).")
	flag.Var(&tolerations, "pod-toleration", "Toleration added to every pod the operator creates, as key[=value][:Effect]; repeatable. "+
		"The local cluster uses kwok.x-k8s.io/node=fake:NoSchedule for its simulated nodes.")
	flag.Var(&imageMirrors, "image-mirror", "Registry mirror of the default images the operator's pods run, as registry=prefix "+
		"(docker.io=mirror.example.com/dockerhub; *=prefix for every registry without its own); repeatable.")
	flag.Var(&imageOverrides, "image", "Image of a component instead of its default, as component=repository[:tag] (components: postgresql, mariadb, redis, mail, "+
		"and the products odoo, espocrm, suitecrm, twenty; without a tag the version is the tag); repeatable.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	images, err := resources.ParseImages(imageMirrors, imageOverrides)
	if err != nil {
		log.Error(err, "invalid --image-mirror or --image")
		os.Exit(2)
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(crmv1alpha1.AddToScheme(scheme))

	cfg := ctrl.GetConfigOrDie()
	cfg.QPS = float32(kubeAPIQPS)
	cfg.Burst = kubeAPIBurst

	metrics := metricsserver.Options{BindAddress: metricsAddr}
	if metricsSecure {
		metrics.SecureServing, metrics.CertDir = true, metricsCert
		// TokenReview and SubjectAccessReview: Prometheus presents its token.
		metrics.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	// In a pod, client-go finds its namespace itself; outside one (make run,
	// make test-faults) POD_NAMESPACE says where the Lease and the webhook's
	// Secret live.
	if leaderElectNS == "" {
		leaderElectNS = os.Getenv("POD_NAMESPACE")
	}
	webhookOpts.Namespace = leaderElectNS
	if webhookDNS != "" {
		webhookOpts.ExtraDNSNames = strings.Split(webhookDNS, ",")
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		WebhookServer:           ctrlwebhook.NewServer(ctrlwebhook.Options{Port: webhookPort, CertDir: webhookOpts.CertDir}),
		Cache:                   cacheOptions(syncPeriod, cacheEverything, slimCache),
		Metrics:                 metrics,
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        "crm-operator.crmops.io",
		LeaderElectionNamespace: leaderElectNS,
		LeaseDuration:           &leaseDuration,
		RenewDeadline:           &renewDeadline,
		RetryPeriod:             &retryPeriod,
		// Stepping down at once on shutdown lets a standby take over without
		// waiting for the lease to expire.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		log.Error(err, "unable to create the manager")
		os.Exit(1)
	}
	if err := controllers.SetupWithManager(mgr, controllers.Options{
		MaxConcurrentReconciles: concurrency, PromotionConcurrency: promotionWorkers, IngressNamespace: ingressNS, AgentImage: agentImage, AgentImageVolume: agentImageVolume, Tolerations: tolerations,
		Images: images, MailReader: mailReader(portalNS),
	}); err != nil {
		log.Error(err, "unable to set up the controllers")
		os.Exit(1)
	}
	if webhookPort != 0 {
		if err := webhook.Setup(mgr, webhookOpts); err != nil {
			log.Error(err, "unable to set up the webhook")
			os.Exit(1)
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "unable to add the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "unable to add the readiness check")
		os.Exit(1)
	}

	log.Info("starting the manager", "leaderElection", leaderElect, "concurrency", concurrency, "promotionConcurrency", promotionWorkers, "qps", kubeAPIQPS, "burst", kubeAPIBurst)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "the manager stopped with an error")
		os.Exit(1)
	}
}

// tolerationFlag parses repeated --pod-toleration key[=value][:Effect] values.
// repeatedFlag collects the values of a flag given several times.
type repeatedFlag []string

func (f *repeatedFlag) String() string { return strings.Join(*f, ",") }

func (f *repeatedFlag) Set(s string) error {
	*f = append(*f, s)
	return nil
}

type tolerationFlag []corev1.Toleration

func (f *tolerationFlag) String() string { return fmt.Sprint([]corev1.Toleration(*f)) }

func (f *tolerationFlag) Set(s string) error {
	t, err := parseToleration(s)
	if err != nil {
		return err
	}
	*f = append(*f, t)
	return nil
}

func parseToleration(s string) (corev1.Toleration, error) {
	kv, effect, hasEffect := strings.Cut(s, ":")
	key, value, hasValue := strings.Cut(kv, "=")
	t := corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists}
	if key == "" {
		return t, fmt.Errorf("toleration %q: the key is empty", s)
	}
	if hasValue {
		t.Operator, t.Value = corev1.TolerationOpEqual, value
	}
	if hasEffect {
		switch e := corev1.TaintEffect(effect); e {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
			t.Effect = e
		default:
			return t, fmt.Errorf("toleration %q: effect must be NoSchedule, PreferNoSchedule or NoExecute", s)
		}
	}
	return t, nil
}

// cacheEverything is set only by the bench build's --cache-everything
// (bench_flags.go), to measure what the selective cache saves.
var cacheEverything bool

func cacheOptions(syncPeriod time.Duration, all, slim bool) cache.Options {
	o := controllers.CacheOptions(slim)
	if all {
		o = cache.Options{}
	}
	o.SyncPeriod = &syncPeriod
	return o
}

// mailReader is the portal's access to the mail catchers, when it has one:
// the htpasswd line comes from the environment (a Secret), never a flag.
func mailReader(namespace string) *resources.MailReader {
	line := strings.TrimSpace(os.Getenv("PORTAL_MAIL_HTPASSWD"))
	if namespace == "" || line == "" {
		return nil
	}
	return &resources.MailReader{Namespace: namespace, Htpasswd: line}
}
