// Command portal serves the product owner's web portal: people sign in at
// the OpenID provider the API server trusts, see the projects that name
// them, and accept or reject sprints; decisions go to the API server with
// the person's own ID token (internal/portal).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/portal"
)

func main() {
	var (
		listen, issuer, issuerCA, clientID, redirect, mailUser string
		claims                                                 portal.Claims
		secure                                                 bool
	)
	flag.StringVar(&listen, "listen", ":8080", "Address the portal serves on.")
	flag.StringVar(&issuer, "issuer-url", "", "OpenID Connect issuer: the one the API server's AuthenticationConfiguration trusts.")
	flag.StringVar(&issuerCA, "issuer-ca-file", "", "CA bundle of the issuer's certificate; empty: the system's.")
	flag.StringVar(&clientID, "client-id", "crm-portal", "OAuth client id at the issuer (the audience the API server expects).")
	flag.StringVar(&redirect, "redirect-url", "", "The portal's callback URL as the browser reaches it, e.g. https://portal.example/callback.")
	flag.StringVar(&claims.Username, "username-claim", "email", "ID token claim naming the person: as the API server's claimMappings.username.")
	flag.StringVar(&claims.UsernamePrefix, "username-prefix", "", "Prefix the API server puts before the user name.")
	flag.StringVar(&claims.Groups, "groups-claim", "groups", "ID token claim listing the person's groups: as the API server's claimMappings.groups.")
	flag.StringVar(&claims.GroupsPrefix, "groups-prefix", "", "Prefix the API server puts before each group.")
	flag.BoolVar(&secure, "secure-cookies", true, "Mark cookies Secure (turn off only for plain-HTTP local runs).")
	flag.StringVar(&mailUser, "mail-user", "portal", "User the mail catchers admit the portal as (the operator's PORTAL_MAIL_HTPASSWD line); its password is PORTAL_MAIL_PASSWORD.")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log, listen, issuer, issuerCA, clientID, redirect, mailUser, claims, secure); err != nil {
		log.Error("the portal stopped", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, listen, issuer, issuerCA, clientID, redirect, mailUser string, claims portal.Claims, secure bool) error {
	if issuer == "" || redirect == "" {
		return errors.New("--issuer-url and --redirect-url are required")
	}
	// The client secret comes from the environment (a Secret), never a flag.
	secret := os.Getenv("PORTAL_CLIENT_SECRET")
	if secret == "" {
		return errors.New("PORTAL_CLIENT_SECRET is not set: the OAuth client's secret at the issuer")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	httpClient := http.DefaultClient
	if issuerCA != "" {
		pem, err := os.ReadFile(issuerCA)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--issuer-ca-file %s holds no certificate", issuerCA)
		}
		httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := crmv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	// Pages read a cache of the three kinds they show (the portal's
	// ServiceAccount may only read them): no request per page.
	objects, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{&crmv1alpha1.ImplementationProject{}: {}, &crmv1alpha1.Environment{}: {}, &crmv1alpha1.Increment{}: {}}})
	if err != nil {
		return err
	}
	for _, obj := range []client.Object{&crmv1alpha1.ImplementationProject{}, &crmv1alpha1.Environment{}, &crmv1alpha1.Increment{}} {
		if _, err := objects.GetInformer(ctx, obj); err != nil {
			return err
		}
	}
	go func() {
		if err := objects.Start(ctx); err != nil {
			log.Error("the cache stopped", "error", err)
			stop()
		}
	}()
	if !objects.WaitForCacheSync(ctx) {
		return errors.New("the cache did not sync")
	}
	oidc, err := portal.NewOIDC(ctx, issuer, clientID, secret, redirect, claims, httpClient, secure)
	if err != nil {
		return err
	}
	// The test environments' caught mail, read from their catchers with
	// the password whose bcrypt hash the operator gives them (the chart's
	// generated Secret); without it the increment page shows no mail.
	var mail portal.MailSource
	if password := os.Getenv("PORTAL_MAIL_PASSWORD"); password != "" {
		mail = portal.Mailpit{User: mailUser, Password: password, Client: &http.Client{Timeout: 10 * time.Second}}
	}
	srv, err := portal.New(portal.Config{
		Reader: objects, ClientFor: portal.ClientsFor(cfg, scheme), OIDC: oidc, Mail: mail, SecureCookies: secure, Log: log,
	})
	if err != nil {
		return err
	}
	hs := &http.Server{Addr: listen, Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdown)
	}()
	log.Info("serving the portal", "listen", listen, "issuer", issuer, "username-claim", claims.Username, "groups-claim", strings.TrimSpace(claims.Groups))
	if err := hs.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
