package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
)

// MailSource reads the mail an environment sent, as its mail catcher
// caught it.
type MailSource interface {
	Messages(ctx context.Context, env *crmv1alpha1.Environment, limit int) ([]MailMessage, error)
	Message(ctx context.Context, env *crmv1alpha1.Environment, id string) (*MailMessage, error)
}

// MailMessage is a caught message: in a list without Text.
type MailMessage struct {
	ID       string
	From     string
	To       []string
	Subject  string
	Received time.Time
	Snippet  string
	Text     string
}

// Mailpit reads the catchers the operator runs (Mailpit) through their web
// API, as the user the operator lets in (the chart's htpasswd line; the
// password comes from the same Secret).
type Mailpit struct {
	User, Password string
	// BaseURL is the catcher's web root of env; nil: its Service in the
	// environment's namespace.
	BaseURL func(env *crmv1alpha1.Environment) string
	Client  *http.Client
}

// ServiceURL is a catcher's web root inside the cluster.
func ServiceURL(env *crmv1alpha1.Environment) string {
	return fmt.Sprintf("http://%s.%s.svc:%d%s/", resources.MailName(env.Name), env.Namespace, resources.MailWebPort, resources.MailPath)
}

type mailpitAddress struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

func (a *mailpitAddress) String() string {
	if a == nil {
		return ""
	}
	if a.Name != "" {
		return fmt.Sprintf("%s <%s>", a.Name, a.Address)
	}
	return a.Address
}

// The fields read of axllent/mailpit@408b30d internal/storage/structs.go
// (MessageSummary, Message) and server/apiv1/messages.go (MessagesSummary).
type mailpitMessage struct {
	ID      string            `json:"ID"`
	From    *mailpitAddress   `json:"From"`
	To      []*mailpitAddress `json:"To"`
	Subject string            `json:"Subject"`
	Created time.Time         `json:"Created"`
	Date    time.Time         `json:"Date"`
	Snippet string            `json:"Snippet"`
	Text    string            `json:"Text"`
}

func (m mailpitMessage) message() MailMessage {
	out := MailMessage{ID: m.ID, From: m.From.String(), Subject: m.Subject, Received: m.Created, Snippet: m.Snippet, Text: m.Text}
	if out.Received.IsZero() {
		out.Received = m.Date
	}
	for _, a := range m.To {
		out.To = append(out.To, a.String())
	}
	return out
}

func (m Mailpit) get(ctx context.Context, env *crmv1alpha1.Environment, path string, into any) error {
	base := ServiceURL(env)
	if m.BaseURL != nil {
		base = m.BaseURL(env)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(m.User, m.Password)
	c := m.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("the mail catcher answered %s: %s", resp.Status, body)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(into)
}

// Messages lists the newest messages first.
func (m Mailpit) Messages(ctx context.Context, env *crmv1alpha1.Environment, limit int) ([]MailMessage, error) {
	var list struct {
		Messages []mailpitMessage `json:"messages"`
	}
	if err := m.get(ctx, env, fmt.Sprintf("api/v1/messages?limit=%d", limit), &list); err != nil {
		return nil, err
	}
	out := make([]MailMessage, 0, len(list.Messages))
	for _, msg := range list.Messages {
		out = append(out, msg.message())
	}
	return out, nil
}

// Message reads one message with its text.
func (m Mailpit) Message(ctx context.Context, env *crmv1alpha1.Environment, id string) (*MailMessage, error) {
	var msg mailpitMessage
	if err := m.get(ctx, env, "api/v1/message/"+url.PathEscape(id), &msg); err != nil {
		return nil, err
	}
	out := msg.message()
	return &out, nil
}
