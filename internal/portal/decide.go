package portal

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

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
