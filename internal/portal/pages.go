package portal

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

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
