// Package portal is the product owner's web portal: server-rendered pages
// read from a cache of the CRM objects, and decisions sent to the API
// server as the signed-in person (their own token), so that the admission
// policies record and check that person exactly as for kubectl.
package portal

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what a Server is built with.
type Config struct {
	// Reader reads the projects, environments and increments: a cache, so
	// that a page costs no request to the API server.
	Reader client.Reader
	// ClientFor returns a client that calls the API server with token, the
	// signed-in person's own ID token, and no credentials of the portal's.
	ClientFor func(token string) (client.Client, error)
	// SignIn verifies an ID token and says whom it names (oidc.go).
	SignIn func(ctx context.Context, rawIDToken string) (Identity, time.Time, error)
	// OIDC, when set, provides SignIn, Login and Callback.
	OIDC *OIDC
	// Login starts a sign-in at the identity provider and Callback ends it;
	// empty: none configured.
	Login, Callback http.Handler
	// Mail reads what a test environment's mail catcher caught; nil: the
	// increment page shows none.
	Mail MailSource
	// Now is the clock (tests).
	Now func() time.Time
	// SecureCookies marks cookies Secure (the portal behind TLS).
	SecureCookies bool
	Log           *slog.Logger
}

// Server serves the portal.
type Server struct {
	cfg      Config
	pages    *template.Template
	mu       sync.Mutex
	sessions map[string]*session
}

// New builds the server; its routes are Handler's.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Server{sessions: map[string]*session{}}
	if cfg.OIDC != nil {
		cfg.SignIn, cfg.Login, cfg.Callback = cfg.OIDC.SignIn, cfg.OIDC.Login(), cfg.OIDC.Callback(s)
	}
	s.cfg = cfg
	pages, err := template.New("").Funcs(template.FuncMap{
		"t": func(p *message.Printer, key string, args ...any) string { return p.Sprintf(key, args...) },
		"phase": func(p *message.Printer, phase any) string {
			return p.Sprintf("phase-" + fmt.Sprint(phase))
		},
		"waited": func(p *message.Printer, d time.Duration) string {
			key, a, b := WaitedParts(d)
			if key == "minutes" {
				return p.Sprintf(key, a)
			}
			return p.Sprintf(key, a, b)
		},
		"date": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				if v.IsZero() {
					return ""
				}
				return v.UTC().Format("2006-01-02 15:04 UTC")
			case interface{ IsZero() bool }:
				if v.IsZero() {
					return ""
				}
			}
			return fmt.Sprint(t)
		},
		"hours": Hours,
		"dict":  func(p *message.Printer, v any) map[string]any { return map[string]any{"P": p, "V": v} },
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s.pages = pages
	return s, nil
}

// Handler routes the portal's pages.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.FileServerFS(staticFS))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	if s.cfg.Login != nil {
		mux.Handle("GET /login", s.cfg.Login)
	}
	if s.cfg.Callback != nil {
		mux.Handle("GET /callback", s.cfg.Callback)
	}
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /{$}", s.signedIn(s.home))
	mux.HandleFunc("GET /projects/{project}", s.signedIn(s.project))
	mux.HandleFunc("GET /projects/{project}/increments/{increment}", s.signedIn(s.increment))
	mux.HandleFunc("GET /projects/{project}/increments/{increment}/progress", s.signedIn(s.progress))
	mux.HandleFunc("GET /projects/{project}/increments/{increment}/mail/{id}", s.signedIn(s.mailMessage))
	mux.HandleFunc("POST /projects/{project}/increments/{increment}/decision", s.signedIn(s.decide))
	return securityHeaders(mux)
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	P       *message.Printer
	Lang    string
	Langs   []language.Tag
	Path    string
	User    string
	CSRF    string
	Login   bool
	Status  int
	Message string
	Data    any
	Follow  bool
}

type handler func(w http.ResponseWriter, r *http.Request, sess *session, pg *page)

func (s *Server) signedIn(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tag := chooseLanguage(r)
		if l := r.URL.Query().Get("lang"); l != "" {
			http.SetCookie(w, s.cookie("lang", tag.String()))
		}
		pg := &page{P: printer(tag), Lang: tag.String(), Langs: Languages, Path: r.URL.Path, Login: s.cfg.Login != nil}
		sess := s.current(r)
		if sess == nil {
			pg.Status = http.StatusUnauthorized
			s.render(w, "signin.html", pg)
			return
		}
		pg.User, pg.CSRF = sess.id.User, sess.csrf
		h(w, r, sess, pg)
	}
}

func (s *Server) render(w http.ResponseWriter, name string, pg *page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if pg.Status != 0 {
		w.WriteHeader(pg.Status)
	}
	if err := s.pages.ExecuteTemplate(w, name, pg); err != nil {
		s.cfg.Log.Error("rendering a page", "page", name, "error", err)
	}
}

// notYours answers a project or increment the person may not see exactly as
// one that does not exist.
func (s *Server) notYours(w http.ResponseWriter, pg *page) {
	pg.Status, pg.Message = http.StatusNotFound, pg.P.Sprintf("not-yours")
	s.render(w, "message.html", pg)
}

func (s *Server) fail(w http.ResponseWriter, pg *page, err error) {
	s.cfg.Log.Error("serving a page", "error", err)
	pg.Status, pg.Message = http.StatusInternalServerError, err.Error()
	s.render(w, "message.html", pg)
}
