// Package plugin implements the commands of `kubectl crm`: a table of a
// project's environments and increments, and the day-to-day actions
// (accept, reject, promote, backup, restore, hibernate, wake, erase) with
// optional waiting whose exit status CI can use.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
)

// ErrNotSucceeded is returned by a wait that ended in a failure state; the
// command exits non-zero.
var ErrNotSucceeded = errors.New("did not succeed")

// CLI runs the commands against one cluster.
type CLI struct {
	// Client watches too: a wait shows every step, however short.
	Client client.WithWatch
	Out    io.Writer
	// Namespace of namespaced objects (the project's namespace).
	Namespace string
	// Timeout bounds every wait; Poll is how often a wait looks.
	Timeout, Poll time.Duration
	// Now tells elapsed time in progress lines; nil is time.Now.
	Now func() time.Time
}

func (c *CLI) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *CLI) key(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: c.Namespace, Name: name}
}

// Status prints the project, its environments and increments. An empty
// project means the project of the CLI's namespace.
func (c *CLI) Status(ctx context.Context, project string) error {
	if project == "" {
		project = c.Namespace
	}
	p := &crmv1alpha1.ImplementationProject{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: project}, p); err != nil {
		return fmt.Errorf("project %s: %w", project, err)
	}
	envs := &crmv1alpha1.EnvironmentList{}
	if err := c.Client.List(ctx, envs, client.InNamespace(project)); err != nil {
		return err
	}
	incs := &crmv1alpha1.IncrementList{}
	if err := c.Client.List(ctx, incs, client.InNamespace(project)); err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.Out, 0, 4, 2, ' ', 0)
	prod := "-"
	if p.Status.Production != nil && p.Status.Production.Version != "" {
		prod = p.Status.Production.Version
	}
	fmt.Fprintf(w, "PROJECT %s\t%s %s\tREADY %s\tCOMPLIANT %s\tPRODUCTION %s\n", p.Name, p.Spec.Product.Name, p.Spec.Product.Version,
		conditionStatus(p.Status.Conditions, crmv1alpha1.ConditionReady), conditionStatus(p.Status.Conditions, "Compliant"), prod)
	fmt.Fprintln(w, budgetLine(p))
	if len(p.Status.Blocks) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "BLOCK\tDELIVERED\tACCEPTED")
		for _, b := range p.Status.Blocks {
			fmt.Fprintf(w, "%s\t%dh\t%dh\n", orDash(b.Block), b.DeliveredHours, b.AcceptedHours)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "ENVIRONMENT\tSTAGE\tPHASE\tVERSION\tINCREMENT\tLAST BACKUP\tURL")
	sort.Slice(envs.Items, func(i, j int) bool {
		return stageOrder(envs.Items[i].Spec.Stage) < stageOrder(envs.Items[j].Spec.Stage)
	})
	for _, e := range envs.Items {
		backup := "-"
		if e.Status.LastBackup != nil {
			backup = e.Status.LastBackup.Name
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Spec.Stage, orDash(string(e.Status.Phase)), orDash(e.Status.Version),
			orDash(e.Status.CurrentIncrement), backup, orDash(e.Status.URL))
	}
	if len(incs.Items) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "INCREMENT\tSPRINT\tVERSION\tPHASE\tSTAGES\tACCEPTED BY")
		sort.Slice(incs.Items, func(i, j int) bool { return incs.Items[i].Spec.Sprint > incs.Items[j].Spec.Sprint })
		for _, inc := range incs.Items {
			var stages []string
			for _, s := range inc.Status.Stages {
				stages = append(stages, fmt.Sprintf("%s:%s", s.Name, orDash(string(s.Phase))))
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", inc.Name, inc.Spec.Sprint, version(&inc), orDash(string(inc.Status.Phase)),
				orDash(strings.Join(stages, " ")), orDash(inc.Status.AcceptedBy))
		}
	}
	return w.Flush()
}

// budgetLine is the hours against the budget, and the warning of
// condition BudgetExceeded when it has one.
func budgetLine(p *crmv1alpha1.ImplementationProject) string {
	used := p.Status.DeliveredHours + p.Status.AcceptedHours
	line := fmt.Sprintf("HOURS %dh delivered, %dh accepted", p.Status.DeliveredHours, p.Status.AcceptedHours)
	if b := p.Spec.BudgetHours; b != nil {
		line = fmt.Sprintf("BUDGET %dh of %dh (%dh delivered, %dh accepted)", used, *b, p.Status.DeliveredHours, p.Status.AcceptedHours)
	}
	if c := meta.FindStatusCondition(p.Status.Conditions, crmv1alpha1.ConditionBudgetExceeded); c != nil {
		switch c.Reason {
		case crmv1alpha1.BudgetOver:
			if b := p.Spec.BudgetHours; b != nil {
				line += fmt.Sprintf("\tOVER BUDGET by %dh", used-*b)
			}
		case crmv1alpha1.BudgetNearlyExhausted:
			line += "\tNEARLY EXHAUSTED"
		}
	}
	return line
}

func stageOrder(s crmv1alpha1.Stage) int {
	return map[crmv1alpha1.Stage]int{crmv1alpha1.StageTest: 0, crmv1alpha1.StageStaging: 1, crmv1alpha1.StageTraining: 2, crmv1alpha1.StageProduction: 3}[s]
}

func version(inc *crmv1alpha1.Increment) string {
	if inc.Spec.Image != "" {
		return inc.Spec.Image
	}
	return inc.Spec.Version
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func conditionStatus(conds []metav1.Condition, typ string) string {
	if c := meta.FindStatusCondition(conds, typ); c != nil {
		return string(c.Status)
	}
	return "-"
}

// Accept records the product owner's acceptance; the API stamps who did it
// from the request's identity and refuses anyone who is not a product owner.
func (c *CLI) Accept(ctx context.Context, name, comment string, waitFor bool) error {
	return c.decide(ctx, name, crmv1alpha1.DecisionAccepted, comment, waitFor)
}

// Reject records the product owner's rejection; a comment is required.
func (c *CLI) Reject(ctx context.Context, name, comment string) error {
	if strings.TrimSpace(comment) == "" {
		return errors.New("a rejection needs --comment saying what is wrong")
	}
	return c.decide(ctx, name, crmv1alpha1.DecisionRejected, comment, false)
}

func (c *CLI) decide(ctx context.Context, name string, d crmv1alpha1.AcceptanceDecision, comment string, waitFor bool) error {
	inc := &crmv1alpha1.Increment{}
	if err := c.Client.Get(ctx, c.key(name), inc); err != nil {
		return err
	}
	patch := client.MergeFrom(inc.DeepCopy())
	inc.Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: d, Comment: comment}
	if err := c.Client.Patch(ctx, inc, patch); err != nil {
		return err
	}
	fmt.Fprintf(c.Out, "increment %s %s\n", name, strings.ToLower(string(d)))
	if !waitFor {
		return nil
	}
	// An accepted increment moves on by itself (autoPromote) or waits for promote.
	return c.waitIncrement(ctx, name, crmv1alpha1.IncrementAwaitingPromotion)
}

// Promote asks to move an accepted increment to the next stage and, with
// waitFor, follows it there step by step.
func (c *CLI) Promote(ctx context.Context, name string, waitFor bool) error {
	inc := &crmv1alpha1.Increment{}
	if err := c.Client.Get(ctx, c.key(name), inc); err != nil {
		return err
	}
	if !inc.Spec.Promote {
		patch := client.MergeFrom(inc.DeepCopy())
		inc.Spec.Promote = true
		if err := c.Client.Patch(ctx, inc, patch); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.Out, "increment %s: promotion requested\n", name)
	if !waitFor {
		return nil
	}
	return c.waitIncrement(ctx, name)
}

// waitIncrement prints every step of the increment until it is final (or
// reaches one of also), and fails unless it ended Promoted (or in also). It
// watches the increment, so that no step is missed between two looks.
func (c *CLI) waitIncrement(ctx context.Context, name string, also ...crmv1alpha1.IncrementPhase) error {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start, last := c.now(), ""
	// done reports the final phase of inc, printing its progress.
	done := func(inc *crmv1alpha1.Increment) (crmv1alpha1.IncrementPhase, bool) {
		line := orDash(string(inc.Status.Phase))
		for _, s := range inc.Status.Stages {
			if s.Phase != "" && s.Phase != crmv1alpha1.StagePending {
				line += fmt.Sprintf("  %s: %s", s.Name, s.Phase)
				if s.Message != "" && s.Phase != crmv1alpha1.StageSucceeded {
					line += " (" + s.Message + ")"
				}
			}
		}
		if line != last {
			fmt.Fprintf(c.Out, "[%4.0fs] %s\n", c.now().Sub(start).Seconds(), line)
			last = line
		}
		p := inc.Status.Phase
		switch {
		case contains(also, p), p == crmv1alpha1.IncrementPromoted, p == crmv1alpha1.IncrementFailed, p == crmv1alpha1.IncrementRolledBack,
			p == crmv1alpha1.IncrementRejected, p == crmv1alpha1.IncrementSuperseded:
			return p, true
		}
		return p, false
	}
	for {
		list := &crmv1alpha1.IncrementList{}
		if err := c.Client.List(ctx, list, client.InNamespace(c.Namespace), client.MatchingFields{"metadata.name": name}); err != nil {
			return err
		}
		if len(list.Items) == 0 {
			return fmt.Errorf("increment %s not found", name)
		}
		if p, ok := done(&list.Items[0]); ok {
			return finalError(name, p, also)
		}
		w, err := c.Client.Watch(ctx, &crmv1alpha1.IncrementList{}, client.InNamespace(c.Namespace),
			client.MatchingFields{"metadata.name": name}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			return err
		}
		for ev := range w.ResultChan() {
			if inc, ok := ev.Object.(*crmv1alpha1.Increment); ok {
				if p, ok := done(inc); ok {
					w.Stop()
					return finalError(name, p, also)
				}
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for increment %s: %w", name, ctx.Err())
		}
		// The server ended the watch: list again and go on.
	}
}

func finalError(name string, p crmv1alpha1.IncrementPhase, also []crmv1alpha1.IncrementPhase) error {
	if p == crmv1alpha1.IncrementPromoted || contains(also, p) {
		return nil
	}
	return fmt.Errorf("increment %s ended %s: %w", name, p, ErrNotSucceeded)
}

func contains(list []crmv1alpha1.IncrementPhase, p crmv1alpha1.IncrementPhase) bool {
	for _, x := range list {
		if x == p {
			return true
		}
	}
	return false
}

func (c *CLI) poll(ctx context.Context, cond wait.ConditionWithContextFunc) error {
	timeout, every := c.Timeout, c.Poll
	if timeout == 0 {
		timeout = 30 * time.Minute
	}
	if every == 0 {
		every = time.Second
	}
	return wait.PollUntilContextTimeout(ctx, every, timeout, true, cond)
}

// Backup takes a manual backup of an environment.
func (c *CLI) Backup(ctx context.Context, env string, waitFor bool) error {
	if err := c.Client.Get(ctx, c.key(env), &crmv1alpha1.Environment{}); err != nil {
		return err
	}
	b := resources.Backup(c.Namespace, fmt.Sprintf("%s-manual-%s", env, c.now().UTC().Format("20060102-150405")), env, crmv1alpha1.BackupManual, "")
	if err := c.Client.Create(ctx, b); err != nil {
		return err
	}
	fmt.Fprintf(c.Out, "backup %s created\n", b.Name)
	if !waitFor {
		return nil
	}
	var phase crmv1alpha1.BackupPhase
	err := c.poll(ctx, func(ctx context.Context) (bool, error) {
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
			return false, err
		}
		phase = b.Status.Phase
		return phase == crmv1alpha1.BackupCompleted || phase == crmv1alpha1.BackupFailed, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for backup %s: %w", b.Name, err)
	}
	if phase == crmv1alpha1.BackupFailed {
		return fmt.Errorf("backup %s failed: %s: %w", b.Name, b.Status.Error, ErrNotSucceeded)
	}
	fmt.Fprintf(c.Out, "backup %s completed: %s at %s\n", b.Name, b.Status.Size, b.Status.Location)
	return nil
}

// Restore replaces an environment's data with a backup. Production needs
// confirm, which the command turns into the Restore's spec.confirm.
func (c *CLI) Restore(ctx context.Context, backup, to string, confirm, waitFor bool) error {
	env := &crmv1alpha1.Environment{}
	if err := c.Client.Get(ctx, c.key(to), env); err != nil {
		return err
	}
	if err := c.Client.Get(ctx, c.key(backup), &crmv1alpha1.Backup{}); err != nil {
		return err
	}
	if env.Spec.Stage == crmv1alpha1.StageProduction && !confirm {
		return fmt.Errorf("restoring into production environment %s replaces all of its data: add --confirm", to)
	}
	var confirmed string
	if confirm {
		confirmed = to
	}
	rs := resources.Restore(c.Namespace, fmt.Sprintf("%s-restore-%s", to, c.now().UTC().Format("20060102-150405")), backup, to, confirmed)
	if err := c.Client.Create(ctx, rs); err != nil {
		return err
	}
	fmt.Fprintf(c.Out, "restore %s created\n", rs.Name)
	if !waitFor {
		return nil
	}
	err := c.poll(ctx, func(ctx context.Context) (bool, error) {
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(rs), rs); err != nil {
			return false, err
		}
		return rs.Status.Phase == crmv1alpha1.RestoreCompleted || rs.Status.Phase == crmv1alpha1.RestoreFailed, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for restore %s: %w", rs.Name, err)
	}
	fmt.Fprintf(c.Out, "restore %s %s: %s\n", rs.Name, strings.ToLower(string(rs.Status.Phase)), rs.Status.Message)
	if rs.Status.Phase == crmv1alpha1.RestoreFailed {
		return ErrNotSucceeded
	}
	return nil
}

// Hibernate stops (true) or wakes (false) an environment; its data stays.
func (c *CLI) Hibernate(ctx context.Context, env string, hibernate bool) error {
	e := &crmv1alpha1.Environment{}
	if err := c.Client.Get(ctx, c.key(env), e); err != nil {
		return err
	}
	patch := client.MergeFrom(e.DeepCopy())
	e.Spec.Hibernate = hibernate
	if err := c.Client.Patch(ctx, e, patch); err != nil {
		return err
	}
	what := "woken"
	if hibernate {
		what = "hibernated (data kept)"
	}
	fmt.Fprintf(c.Out, "environment %s %s\n", env, what)
	return nil
}

// Mail tells where an environment's caught mail is read and how to sign in:
// the catcher's web UI on the environment's host, or a port-forward to its
// Service when the environment has no Ingress. The password stays in its
// Secret: the command prints how to read it, never the password.
func (c *CLI) Mail(ctx context.Context, env string) error {
	e := &crmv1alpha1.Environment{}
	if err := c.Client.Get(ctx, c.key(env), e); err != nil {
		return err
	}
	if e.Status.MailURL == "" {
		if e.Spec.Stage == crmv1alpha1.StageProduction {
			return fmt.Errorf("environment %s is production: its mail goes to its real SMTP server, no catcher runs", env)
		}
		return fmt.Errorf("environment %s has no mail catcher (it names a real SMTP server the project allows outside production)", env)
	}
	url := e.Status.MailURL
	if strings.Contains(url, ".svc:") {
		fmt.Fprintf(c.Out, "kubectl -n %s port-forward service/%s-mail 8025\n", e.Namespace, env)
		url = "http://localhost:8025/mail/"
	}
	fmt.Fprintf(c.Out, "caught mail of %s: %s\n", env, url)
	fmt.Fprintf(c.Out, "sign in as admin with: kubectl -n %s get secret %s-credentials -o jsonpath='{.data.mail-password}' | base64 -d\n", e.Namespace, env)
	return nil
}

// Erase files an ErasureRequest for a person in every environment of a project.
func (c *CLI) Erase(ctx context.Context, project, email, reason string, waitFor bool) error {
	if reason == "" {
		reason = "erasure requested with kubectl crm erase"
	}
	er := &crmv1alpha1.ErasureRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "erasure-", Namespace: project},
		Spec: crmv1alpha1.ErasureRequestSpec{
			ProjectRef: crmv1alpha1.ProjectReference{Name: project},
			Subject:    crmv1alpha1.ErasureSubject{Email: email},
			Reason:     reason,
		},
	}
	if err := c.Client.Create(ctx, er); err != nil {
		return err
	}
	// The address is not echoed: terminals and CI logs keep what they print.
	fmt.Fprintf(c.Out, "erasurerequest %s created in %s\n", er.Name, project)
	if !waitFor {
		return nil
	}
	err := c.poll(ctx, func(ctx context.Context) (bool, error) {
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(er), er); err != nil {
			return false, err
		}
		return er.Status.Phase == crmv1alpha1.ErasureCompleted || er.Status.Phase == crmv1alpha1.ErasureFailed, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for erasurerequest %s: %w", er.Name, err)
	}
	if er.Status.Phase == crmv1alpha1.ErasureFailed {
		return fmt.Errorf("erasurerequest %s failed: %s: %w", er.Name, conditionMessage(er.Status.Conditions, crmv1alpha1.ConditionComplete), ErrNotSucceeded)
	}
	fmt.Fprintf(c.Out, "erasurerequest %s completed in %d environments\n", er.Name, len(er.Status.Environments))
	return nil
}

func conditionMessage(conds []metav1.Condition, typ string) string {
	if c := meta.FindStatusCondition(conds, typ); c != nil {
		return c.Message
	}
	return ""
}
