// Command dev-idp is the local cluster's OpenID provider (`make run`): the
// portal signs people in there, and the local API server trusts its ID
// tokens (hack/local-up.sh writes the AuthenticationConfiguration). It is
// zitadel/oidc's example provider (an OpenID Certified library; in-memory
// storage, a login page) served over TLS with a certificate made here, for
// the users named on the command line, whose passwords are generated on the
// first start and kept in DIR/users.json: no default password. The ID token
// names a person by sub, their user id, which is their email address.
//
// For local use only: production clusters use their own provider (Dex,
// Keycloak, Entra ID, ...), configured as docs/user-guide/portal.md#deploying-it says.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	var (
		listen, dir, clientID, redirect string
		users                           stringList
	)
	flag.StringVar(&listen, "listen", "127.0.0.1:18444", "Address to serve on (TLS); the issuer is https://ADDRESS.")
	flag.StringVar(&dir, "dir", "bin/local/idp", "Where the certificate, the users and their passwords, and the client's secret are kept.")
	flag.StringVar(&clientID, "client-id", "crm-portal", "The portal's OAuth client id (the ID tokens' audience).")
	flag.StringVar(&redirect, "redirect-url", "", "The portal's callback URL.")
	flag.Var(&users, "user", "A user (an email address) who may sign in; repeat.")
	flag.Parse()
	if err := run(listen, dir, clientID, redirect, users); err != nil {
		fmt.Fprintln(os.Stderr, "dev-idp:", err)
		os.Exit(1)
	}
}

func run(listen, dir, clientID, redirect string, users []string) error {
	if redirect == "" || len(users) == 0 {
		return errors.New("--redirect-url and at least one --user are required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return err
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := ensureCertificate(certFile, keyFile, host); err != nil {
		return err
	}
	store, err := ensureUsers(filepath.Join(dir, "users.json"), users)
	if err != nil {
		return err
	}
	secret, err := ensureSecret(filepath.Join(dir, "client-secret"))
	if err != nil {
		return err
	}
	storage.RegisterClients(storage.WebClient(clientID, secret, redirect))
	issuer := "https://" + listen
	srv := &http.Server{Addr: listen, Handler: exampleop.SetupServer(issuer, storage.NewStorage(store), nil, false), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("dev-idp: issuer %s, client %s, users %s\n", issuer, clientID, strings.Join(users, ", "))
	return srv.ListenAndServeTLS(certFile, keyFile)
}

// ensureCertificate makes a self-signed certificate for host once; the API
// server and the portal trust it (its own CA).
func ensureCertificate(certFile, keyFile, host string) error {
	if _, err := os.Stat(certFile); err == nil {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "crm-operator dev-idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		DNSNames: []string{"localhost"},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func randomPassword() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ensureUsers keeps each user's generated password across restarts.
func ensureUsers(path string, emails []string) (storage.UserStore, error) {
	users := map[string]*storage.User{}
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &users); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	for _, email := range emails {
		if users[email] != nil {
			continue
		}
		password, err := randomPassword()
		if err != nil {
			return nil, err
		}
		users[email] = &storage.User{ID: email, Username: email, Password: password, Email: email, EmailVerified: true}
	}
	data, err := json.MarshalIndent(users, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, err
	}
	// "email password" per line, for make run's closing message.
	var lines strings.Builder
	for _, email := range emails {
		fmt.Fprintf(&lines, "%s %s\n", email, users[email].Password)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "passwords"), []byte(lines.String()), 0o600); err != nil {
		return nil, err
	}
	return storage.StoreFromFile(path)
}

func ensureSecret(path string) (string, error) {
	if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
		return strings.TrimSpace(string(data)), nil
	}
	secret, err := randomPassword()
	if err != nil {
		return "", err
	}
	return secret, os.WriteFile(path, []byte(secret), 0o600)
}
