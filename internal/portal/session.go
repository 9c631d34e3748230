package portal

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"time"
)

// session is one signed-in person's: who they are, the ID token the API
// server is called with on their behalf, when it ends, and the CSRF token
// every form of theirs must carry back.
type session struct {
	id      Identity
	token   string
	expires time.Time
	csrf    string
}

const sessionCookie = "crm-portal-session"

// StartSession records a verified sign-in and sets its cookie: the token
// stays on the server, the browser holds a random session id.
func (s *Server) StartSession(ctx context.Context, w http.ResponseWriter, rawIDToken string) error {
	id, expires, err := s.cfg.SignIn(ctx, rawIDToken)
	if err != nil {
		return err
	}
	sid, csrf := randomString(), randomString()
	s.mu.Lock()
	now := s.cfg.Now()
	for k, v := range s.sessions { // expired sessions go at each sign-in
		if now.After(v.expires) {
			delete(s.sessions, k)
		}
	}
	s.sessions[sid] = &session{id: id, token: rawIDToken, expires: expires, csrf: csrf}
	s.mu.Unlock()
	c := s.cookie(sessionCookie, sid) //nolint:gosec // G124: newCookie sets HttpOnly, SameSite and Secure (--secure-cookies)
	c.Expires = expires
	http.SetCookie(w, c)
	return nil
}

func (s *Server) cookie(name, value string) *http.Cookie {
	return newCookie(name, value, s.cfg.SecureCookies)
}

// newCookie is HttpOnly, SameSite=Lax and Secure unless the portal runs on
// plain HTTP (--secure-cookies=false, local runs only).
func newCookie(name, value string, secure bool) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure} //nolint:gosec // G124: Secure is --secure-cookies, on by default
}

func randomString() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) current(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[c.Value]
	if sess == nil || s.cfg.Now().After(sess.expires) {
		return nil
	}
	return sess
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if sess := s.current(r); sess == nil || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.csrf)) != 1 {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	c := s.cookie(sessionCookie, "") //nolint:gosec // G124: newCookie sets HttpOnly, SameSite and Secure (--secure-cookies)
	c.MaxAge = -1
	http.SetCookie(w, c)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
