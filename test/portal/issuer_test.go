package portal

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// issuer is a minimal OpenID provider: discovery, keys, and ID tokens it
// signs for the tests. The real API server trusts it (its
// AuthenticationConfiguration) and the portal verifies its tokens, as both
// do with Dex in the local cluster.
type issuer struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	signer jose.Signer
}

const audience = "crm-portal"

func newIssuer() (*issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "test", Algorithm: "RS256"}}, nil)
	if err != nil {
		return nil, err
	}
	is := &issuer{key: key, signer: signer}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/keys",
			"authorization_endpoint": is.srv.URL + "/auth", "token_endpoint": is.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"}, "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "test", Algorithm: "RS256", Use: "sig"}}})
	})
	is.srv = httptest.NewTLSServer(mux)
	return is, nil
}

// caPEM is the issuer's certificate, for the API server and the portal.
func (is *issuer) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw})
}

// token signs an ID token for email in groups.
func (is *issuer) token(t testing.TB, email string, groups ...string) string {
	t.Helper()
	return is.tokenVerified(t, email, true, groups...)
}

// tokenVerified signs an ID token whose email_verified claim is verified
// (nil: no such claim).
func (is *issuer) tokenVerified(t testing.TB, email string, verified any, groups ...string) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": is.srv.URL, "aud": audience, "sub": "sub-" + email, "email": email,
		"groups": groups, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if verified != nil {
		claims["email_verified"] = verified
	}
	raw, err := jwt.Signed(is.signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
