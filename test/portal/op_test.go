package portal

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// signInProvider is an OpenID provider with a login page, for the browser
// test: zitadel/oidc's (an OpenID Certified library) example provider with
// in-memory storage and the users below. Its ID tokens name the person by
// sub, the user's id, which is their email address here.
type signInProvider struct {
	srv *httptest.Server
}

const (
	portalClient       = "crm-portal-browser"
	portalClientSecret = "browser-test-secret"
)

// people who sign in through the browser, with their passwords.
var people = map[string]string{"alice@alpha.example": "alice-password-1", "bob@beta.example": "bob-password-1"}

func newSignInProvider(dir string, redirect string) (*signInProvider, error) {
	users := map[string]*storage.User{}
	for email, password := range people {
		users[email] = &storage.User{ID: email, Username: email, Password: password, Email: email, EmailVerified: true}
	}
	data, err := json.Marshal(users)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "users.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, err
	}
	store, err := storage.StoreFromFile(path)
	if err != nil {
		return nil, err
	}
	storage.RegisterClients(storage.WebClient(portalClient, portalClientSecret, redirect))
	// The issuer's URL must be known before its handler: listen first.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &signInProvider{srv: httptest.NewUnstartedServer(nil)}
	p.srv.Listener = l
	issuer := "https://" + l.Addr().String()
	p.srv.Config.Handler = exampleop.SetupServer(issuer, storage.NewStorage(store), nil, false) // nil: it would replace the process's default logger
	p.srv.StartTLS()
	return p, nil
}

func (p *signInProvider) client() *http.Client { return p.srv.Client() }
