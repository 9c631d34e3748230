package portal

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// OIDC signs people in at an OpenID Connect provider (Dex in the local
// cluster) with the authorization code flow. The claims it reads must be
// the ones the API server maps (its AuthenticationConfiguration's
// claimMappings), so that the person the portal shows is the person the
// API server records: same username claim and prefix, same groups claim
// and prefix.
type OIDC struct {
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
	claims   Claims
	secure   bool
	// client reaches the provider (its CA): discovery, keys, code exchange.
	client *http.Client
}

// Claims say which ID token claims name the person.
type Claims struct {
	Username, UsernamePrefix string
	Groups, GroupsPrefix     string
}

// NewOIDC discovers the provider at issuer. httpClient (nil: the default)
// carries the provider's CA.
func NewOIDC(ctx context.Context, issuer, clientID, clientSecret, redirectURL string, claims Claims, httpClient *http.Client, secureCookies bool) (*OIDC, error) {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	ctx = oidc.ClientContext(ctx, httpClient)
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("discovering the OpenID provider %s: %w", issuer, err)
	}
	return &OIDC{
		verifier: provider.Verifier(&oidc.Config{ClientID: clientID}),
		oauth: oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL,
			Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile", "groups"}},
		claims: claims,
		secure: secureCookies,
		client: httpClient,
	}, nil
}

// NewVerifier verifies ID tokens of issuer for clientID without the code
// flow (tests and token sign-in).
func NewVerifier(ctx context.Context, issuer, clientID string, claims Claims, httpClient *http.Client) (*OIDC, error) {
	return NewOIDC(ctx, issuer, clientID, "", "", claims, httpClient, true)
}

// SignIn verifies an ID token (signature, issuer, audience, expiry) and
// reads whom it names.
func (o *OIDC) SignIn(ctx context.Context, raw string) (Identity, time.Time, error) {
	tok, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, time.Time{}, err
	}
	var all map[string]any
	if err := tok.Claims(&all); err != nil {
		return Identity{}, time.Time{}, err
	}
	user, _ := all[o.claims.Username].(string)
	if user == "" {
		return Identity{}, time.Time{}, fmt.Errorf("the ID token has no %q claim", o.claims.Username)
	}
	if o.claims.Username == "email" {
		// Only a boolean true verifies: a missing claim, "true" as a
		// string or anything else is an address nobody proved.
		if verified, ok := all["email_verified"].(bool); !ok || !verified {
			return Identity{}, time.Time{}, errors.New("the ID token's email is not verified")
		}
	}
	id := Identity{User: o.claims.UsernamePrefix + user}
	if groups, ok := all[o.claims.Groups].([]any); ok {
		for _, g := range groups {
			if s, ok := g.(string); ok {
				id.Groups = append(id.Groups, o.claims.GroupsPrefix+s)
			}
		}
	}
	return id, tok.Expiry, nil
}

// The sign-in's state, nonce and PKCE verifier live in short-lived cookies
// between the redirect to the provider and the callback: the state binds
// the callback to this browser, the nonce the ID token to this sign-in (a
// token replayed from elsewhere is refused), the verifier the code to this
// client (a stolen code cannot be exchanged, RFC 7636).
const (
	stateCookie    = "crm-portal-state"
	nonceCookie    = "crm-portal-nonce"
	verifierCookie = "crm-portal-pkce"
)

// Login redirects to the provider with a fresh state, nonce and PKCE challenge.
func (o *OIDC) Login() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
		for name, value := range map[string]string{stateCookie: state, nonceCookie: nonce, verifierCookie: verifier} {
			c := newCookie(name, value, o.secure) //nolint:gosec // G124: newCookie sets HttpOnly, SameSite and Secure (--secure-cookies)
			c.MaxAge = 600
			http.SetCookie(w, c)
		}
		http.Redirect(w, r, o.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
	})
}

// Callback completes the sign-in and starts the portal's session.
func (o *OIDC) Callback(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent := map[string]string{}
		for _, name := range []string{stateCookie, nonceCookie, verifierCookie} {
			if c, err := r.Cookie(name); err == nil {
				sent[name] = c.Value
			}
			gone := newCookie(name, "", o.secure) //nolint:gosec // G124: newCookie sets HttpOnly, SameSite and Secure (--secure-cookies)
			gone.MaxAge = -1
			http.SetCookie(w, gone)
		}
		if sent[stateCookie] == "" || sent[stateCookie] != r.URL.Query().Get("state") || sent[nonceCookie] == "" || sent[verifierCookie] == "" {
			http.Error(w, "sign-in state does not match: start again from the portal", http.StatusBadRequest)
			return
		}
		if e := r.URL.Query().Get("error"); e != "" {
			http.Error(w, "the identity provider refused the sign-in: "+e, http.StatusUnauthorized)
			return
		}
		tok, err := o.oauth.Exchange(context.WithValue(r.Context(), oauth2.HTTPClient, o.client), r.URL.Query().Get("code"),
			oauth2.VerifierOption(sent[verifierCookie]))
		if err != nil {
			http.Error(w, "exchanging the sign-in code: "+err.Error(), http.StatusBadGateway)
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		if raw == "" {
			http.Error(w, "the identity provider sent no ID token", http.StatusBadGateway)
			return
		}
		if idTok, err := o.verifier.Verify(r.Context(), raw); err != nil || subtle.ConstantTimeCompare([]byte(idTok.Nonce), []byte(sent[nonceCookie])) != 1 {
			http.Error(w, "the ID token was not issued for this sign-in (nonce)", http.StatusUnauthorized)
			return
		}
		if err := s.StartSession(r.Context(), w, raw); err != nil {
			http.Error(w, "the ID token was refused: "+err.Error(), http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
}

// ClientsFor makes Config.ClientFor for the API server of base: clients
// that carry the signed-in person's token and nothing else (UserConfig).
func ClientsFor(base *rest.Config, scheme *runtime.Scheme) func(token string) (client.Client, error) {
	return func(token string) (client.Client, error) {
		return client.New(UserConfig(base, token), client.Options{Scheme: scheme})
	}
}

// UserConfig is base without any credential of the portal's, carrying the
// signed-in person's token instead: the API server authenticates, authorizes
// and records that person (their token's claims, mapped by the API server's
// AuthenticationConfiguration).
func UserConfig(base *rest.Config, token string) *rest.Config {
	c := rest.AnonymousClientConfig(base)
	c.BearerToken = token
	return c
}
