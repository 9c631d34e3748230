// Package portal is the product owner's web portal: server-rendered pages
// read from a cache of the CRM objects, and decisions sent to the API
// server as the signed-in person (their own token), so that the admission
// policies record and check that person exactly as for kubectl.
package portal

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
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

type session struct {
	id      Identity
	token   string
	expires time.Time
	csrf    string
}

const sessionCookie = "crm-portal-session"

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

// visibleProject reads a project from the cache if id may see it.
func (s *Server) visibleProject(ctx context.Context, id Identity, name string) (*crmv1alpha1.ImplementationProject, bool) {
	p := &crmv1alpha1.ImplementationProject{}
	if err := s.cfg.Reader.Get(ctx, types.NamespacedName{Name: name}, p); err != nil || !id.Sees(p) || p.Status.Namespace == "" {
		return nil, false
	}
	return p, true
}

type homeData struct {
	Pending  []Pending
	Projects []projectRow
}

type projectRow struct {
	Project *crmv1alpha1.ImplementationProject
	Budget  Budget
	Owner   bool
}

func (s *Server) home(w http.ResponseWriter, r *http.Request, sess *session, pg *page) {
	ctx := r.Context()
	projects := &crmv1alpha1.ImplementationProjectList{}
	if err := s.cfg.Reader.List(ctx, projects); err != nil {
		s.fail(w, pg, err)
		return
	}
	var visible []crmv1alpha1.ImplementationProject
	data := homeData{}
	for i := range projects.Items {
		p := &projects.Items[i]
		if sess.id.Sees(p) {
			visible = append(visible, *p)
			data.Projects = append(data.Projects, projectRow{Project: p, Budget: BudgetOf(p), Owner: sess.id.ProductOwnerOf(p)})
		}
	}
	slices.SortFunc(data.Projects, func(a, b projectRow) int { return strings.Compare(a.Project.Name, b.Project.Name) })
	var incs []crmv1alpha1.Increment
	for _, p := range visible {
		list := &crmv1alpha1.IncrementList{}
		if err := s.cfg.Reader.List(ctx, list, client.InNamespace(p.Status.Namespace)); err != nil {
			s.fail(w, pg, err)
			return
		}
		incs = append(incs, list.Items...)
	}
	data.Pending = PendingFor(sess.id, visible, incs, s.cfg.Now())
	pg.Data = data
	s.render(w, "home.html", pg)
}

type projectData struct {
	Project      *crmv1alpha1.ImplementationProject
	Budget       Budget
	Environments []crmv1alpha1.Environment
	Increments   []crmv1alpha1.Increment
	Production   *crmv1alpha1.Environment
	// LastPromoted is the newest increment promoted to production, and when.
	LastPromoted   *crmv1alpha1.Increment
	LastPromotedAt time.Time
	// Compliance is the project's Compliant condition, if any.
	Compliance *metav1.Condition
}

func (s *Server) project(w http.ResponseWriter, r *http.Request, sess *session, pg *page) {
	ctx := r.Context()
	p, ok := s.visibleProject(ctx, sess.id, r.PathValue("project"))
	if !ok {
		s.notYours(w, pg)
		return
	}
	envs := &crmv1alpha1.EnvironmentList{}
	incs := &crmv1alpha1.IncrementList{}
	if err := s.cfg.Reader.List(ctx, envs, client.InNamespace(p.Status.Namespace)); err != nil {
		s.fail(w, pg, err)
		return
	}
	if err := s.cfg.Reader.List(ctx, incs, client.InNamespace(p.Status.Namespace)); err != nil {
		s.fail(w, pg, err)
		return
	}
	data := projectData{Project: p, Budget: BudgetOf(p)}
	stageOrder := map[string]int{}
	for i, st := range p.Spec.Stages {
		stageOrder[st] = i
	}
	for _, e := range envs.Items {
		if e.Spec.ProjectRef.Name == p.Name {
			data.Environments = append(data.Environments, e)
		}
	}
	slices.SortFunc(data.Environments, func(a, b crmv1alpha1.Environment) int { return stageOrder[a.Name] - stageOrder[b.Name] })
	for i := range data.Environments {
		if data.Environments[i].Spec.Stage == crmv1alpha1.StageProduction {
			data.Production = &data.Environments[i]
		}
	}
	for _, inc := range incs.Items {
		if inc.Spec.ProjectRef.Name == p.Name {
			data.Increments = append(data.Increments, inc)
		}
	}
	slices.SortFunc(data.Increments, func(a, b crmv1alpha1.Increment) int { return int(b.Spec.Sprint - a.Spec.Sprint) })
	for i := range data.Increments {
		inc := &data.Increments[i]
		if inc.Status.Phase != crmv1alpha1.IncrementPromoted || len(inc.Status.Stages) == 0 {
			continue
		}
		if at := inc.Status.Stages[len(inc.Status.Stages)-1].FinishedAt; at != nil && at.After(data.LastPromotedAt) {
			data.LastPromoted, data.LastPromotedAt = inc, at.Time
		}
	}
	data.Compliance = meta.FindStatusCondition(p.Status.Conditions, crmv1alpha1.ConditionCompliant)
	pg.Data = data
	s.render(w, "project.html", pg)
}

type incrementData struct {
	Project   *crmv1alpha1.ImplementationProject
	Increment *crmv1alpha1.Increment
	Test      *crmv1alpha1.Environment
	Owner     bool
	Awaiting  bool
	Verified  *metav1.Condition
	Final     bool
	Comment   string
	// CatchesMail: the test environment's mail goes to its catcher, whose
	// newest messages are Mail (MailError when it did not answer).
	CatchesMail bool
	Mail        []MailMessage
	MailError   string
	// Message is the one caught message shown (mailMessage).
	Message *MailMessage
}

func (s *Server) loadIncrement(ctx context.Context, id Identity, project, name string) (*incrementData, bool) {
	p, ok := s.visibleProject(ctx, id, project)
	if !ok {
		return nil, false
	}
	inc := &crmv1alpha1.Increment{}
	if err := s.cfg.Reader.Get(ctx, types.NamespacedName{Namespace: p.Status.Namespace, Name: name}, inc); err != nil || inc.Spec.ProjectRef.Name != p.Name {
		return nil, false
	}
	data := &incrementData{Project: p, Increment: inc, Owner: id.ProductOwnerOf(p),
		Awaiting: inc.Status.Phase == crmv1alpha1.IncrementAwaitingAcceptance}
	if len(p.Spec.Stages) > 0 {
		env := &crmv1alpha1.Environment{}
		if err := s.cfg.Reader.Get(ctx, types.NamespacedName{Namespace: p.Status.Namespace, Name: p.Spec.Stages[0]}, env); err == nil {
			data.Test = env
		}
	}
	data.CatchesMail = data.Test != nil && data.Test.Status.MailURL != "" && s.cfg.Mail != nil
	data.Verified = meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionVerified)
	switch inc.Status.Phase {
	case crmv1alpha1.IncrementPromoted, crmv1alpha1.IncrementFailed, crmv1alpha1.IncrementRolledBack,
		crmv1alpha1.IncrementRejected, crmv1alpha1.IncrementSuperseded:
		data.Final = true
	}
	return data, true
}

func (s *Server) increment(w http.ResponseWriter, r *http.Request, sess *session, pg *page) {
	data, ok := s.loadIncrement(r.Context(), sess.id, r.PathValue("project"), r.PathValue("increment"))
	if !ok {
		s.notYours(w, pg)
		return
	}
	if r.URL.Query().Get("done") == "1" {
		// Just decided: the cache may not hold the decision yet; the form
		// is not offered again.
		pg.Message = pg.P.Sprintf("decided")
		data.Awaiting = false
	}
	if data.CatchesMail {
		// The catcher's own API, read by the portal: the person's right to
		// see it is the project's (loadIncrement), as for the page itself.
		var err error
		if data.Mail, err = s.cfg.Mail.Messages(r.Context(), data.Test, 20); err != nil {
			s.cfg.Log.Info("the test environment's mail catcher did not answer", "environment", data.Test.Namespace+"/"+data.Test.Name, "error", err)
			data.MailError = err.Error()
		}
	}
	// Until the increment ends, the page follows it (a fragment from the
	// cache every few seconds): right after a decision the cache may not
	// have it yet.
	pg.Follow = !data.Final
	pg.Data = data
	s.render(w, "increment.html", pg)
}

// mailMessage shows one message the test environment sent, as text.
func (s *Server) mailMessage(w http.ResponseWriter, r *http.Request, sess *session, pg *page) {
	data, ok := s.loadIncrement(r.Context(), sess.id, r.PathValue("project"), r.PathValue("increment"))
	if !ok || !data.CatchesMail {
		s.notYours(w, pg)
		return
	}
	msg, err := s.cfg.Mail.Message(r.Context(), data.Test, r.PathValue("id"))
	if err != nil {
		pg.Status, pg.Message = http.StatusBadGateway, pg.P.Sprintf("mail-unreachable", err.Error())
		s.render(w, "message.html", pg)
		return
	}
	data.Message = msg
	pg.Data = data
	s.render(w, "mail.html", pg)
}

// progress is the increment's stages as a fragment, for the page's live
// follow (a script replaces the table with it every few seconds).
func (s *Server) progress(w http.ResponseWriter, r *http.Request, sess *session, pg *page) {
	data, ok := s.loadIncrement(r.Context(), sess.id, r.PathValue("project"), r.PathValue("increment"))
	if !ok {
		s.notYours(w, pg)
		return
	}
	pg.Data = data
	pg.Follow = !data.Final
	s.render(w, "progress.html", pg)
}

// decide sends the person's decision with their own token: the form says
// only what (accept or reject) and why; who is the API server's to record.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, sess *session, pg *page) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		pg.Status, pg.Message = http.StatusBadRequest, err.Error()
		s.render(w, "message.html", pg)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(sess.csrf)) != 1 {
		pg.Status, pg.Message = http.StatusForbidden, "the form is stale or was not sent from this portal: reload the page"
		s.render(w, "message.html", pg)
		return
	}
	data, ok := s.loadIncrement(ctx, sess.id, r.PathValue("project"), r.PathValue("increment"))
	if !ok {
		s.notYours(w, pg)
		return
	}
	// Exactly the two decisions the form offers; anything else is refused
	// rather than read as an acceptance.
	var decision crmv1alpha1.AcceptanceDecision
	switch r.PostForm.Get("decision") {
	case "accept":
		decision = crmv1alpha1.DecisionAccepted
	case "reject":
		decision = crmv1alpha1.DecisionRejected
	default:
		http.Error(w, "decision must be accept or reject", http.StatusBadRequest)
		return
	}
	comment := strings.TrimSpace(r.PostForm.Get("comment"))
	again := func(status int, msg string) {
		data.Comment = comment
		pg.Status, pg.Message, pg.Data = status, msg, data
		s.render(w, "increment.html", pg)
	}
	if decision == crmv1alpha1.DecisionRejected && comment == "" {
		again(http.StatusUnprocessableEntity, pg.P.Sprintf("comment-required"))
		return
	}
	if !data.Awaiting {
		again(http.StatusConflict, pg.P.Sprintf("not-awaiting", pg.P.Sprintf("phase-"+string(data.Increment.Status.Phase))))
		return
	}
	c, err := s.cfg.ClientFor(sess.token)
	if err != nil {
		s.fail(w, pg, err)
		return
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"acceptance": crmv1alpha1.Acceptance{Decision: decision, Comment: comment}}})
	if err != nil {
		s.fail(w, pg, err)
		return
	}
	inc := &crmv1alpha1.Increment{}
	inc.Namespace, inc.Name = data.Increment.Namespace, data.Increment.Name
	if err := c.Patch(ctx, inc, client.RawPatch(types.MergePatchType, patch)); err != nil {
		status := http.StatusBadGateway
		var se apierrors.APIStatus
		if errors.As(err, &se) {
			status = int(se.Status().Code)
		}
		again(status, pg.P.Sprintf("decision-refused", err.Error()))
		return
	}
	s.cfg.Log.Info("decision sent as the signed-in person", "user", sess.id.User, "increment", inc.Namespace+"/"+inc.Name, "decision", decision)
	http.Redirect(w, r, fmt.Sprintf("/projects/%s/increments/%s?done=1", data.Project.Name, inc.Name), http.StatusSeeOther)
}

func (s *Server) fail(w http.ResponseWriter, pg *page, err error) {
	s.cfg.Log.Error("serving a page", "error", err)
	pg.Status, pg.Message = http.StatusInternalServerError, err.Error()
	s.render(w, "message.html", pg)
}
