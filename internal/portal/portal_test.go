package portal

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/language"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

func TestCatalogueIsComplete(t *testing.T) {
	for key, en := range messages[language.English] {
		for _, tag := range Languages[1:] {
			text, ok := messages[tag][key]
			if !ok {
				t.Errorf("%s lacks %q", tag, key)
				continue
			}
			if strings.Count(text, "%") != strings.Count(en, "%") {
				t.Errorf("%s %q takes other arguments than English: %q vs %q", tag, key, text, en)
			}
		}
	}
	for _, tag := range Languages[1:] {
		for key := range messages[tag] {
			if _, ok := messages[language.English][key]; !ok {
				t.Errorf("%s has %q, which English lacks", tag, key)
			}
		}
	}
}

func TestChooseLanguage(t *testing.T) {
	for _, tc := range []struct {
		query, cookie, accept string
		want                  language.Tag
	}{
		{want: language.English},
		{accept: "uk-UA,uk;q=0.9,en;q=0.5", want: language.Ukrainian},
		{accept: "pl-PL", want: language.English},
		{cookie: "uk", accept: "en", want: language.Ukrainian},
		{query: "en", cookie: "uk", want: language.English},
		{query: "xx-nonsense", accept: "uk", want: language.Ukrainian},
	} {
		r := httptest.NewRequest("GET", "/?lang="+tc.query, nil)
		if tc.query == "" {
			r = httptest.NewRequest("GET", "/", nil)
		}
		if tc.cookie != "" {
			r.Header.Set("Cookie", "lang="+tc.cookie)
		}
		if tc.accept != "" {
			r.Header.Set("Accept-Language", tc.accept)
		}
		if got := chooseLanguage(r); got != tc.want {
			t.Errorf("query %q cookie %q Accept-Language %q: %s, want %s", tc.query, tc.cookie, tc.accept, got, tc.want)
		}
	}
}

func TestIdentitySees(t *testing.T) {
	p := &crmv1alpha1.ImplementationProject{Spec: crmv1alpha1.ImplementationProjectSpec{
		ProductOwners: crmv1alpha1.Subjects{Users: []string{"po@acme.example"}, Groups: []string{"acme:product-owners"}},
		Integrators:   &crmv1alpha1.Subjects{Groups: []string{"integrator:acme-team"}},
		// Administrators read the project through their RoleBinding: the
		// portal shows it to them too.
		Administrators: &crmv1alpha1.Subjects{Users: []string{"admin@hoster.example"}},
	}}
	for _, tc := range []struct {
		id          Identity
		sees, owner bool
	}{
		{Identity{User: "po@acme.example"}, true, true},
		{Identity{User: "someone@acme.example", Groups: []string{"acme:product-owners"}}, true, true},
		{Identity{User: "dev@integrator.example", Groups: []string{"integrator:acme-team"}}, true, false},
		{Identity{User: "admin@hoster.example"}, true, false},
		{Identity{User: "po@other.example", Groups: []string{"other:product-owners"}}, false, false},
		{Identity{Groups: []string{"acme:product-owners"}}, false, false}, // no user: not signed in
	} {
		if got := tc.id.Sees(p); got != tc.sees {
			t.Errorf("%+v sees: %v, want %v", tc.id, got, tc.sees)
		}
		if got := tc.id.ProductOwnerOf(p); got != tc.owner {
			t.Errorf("%+v owner: %v, want %v", tc.id, got, tc.owner)
		}
	}
}

func TestPendingForListsTheOldestFirst(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	project := func(name, owner string) crmv1alpha1.ImplementationProject {
		p := crmv1alpha1.ImplementationProject{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: crmv1alpha1.ImplementationProjectSpec{ProductOwners: crmv1alpha1.Subjects{Users: []string{owner}}}}
		p.Status.Namespace = name
		return p
	}
	inc := func(ns, name string, phase crmv1alpha1.IncrementPhase, verifiedAgo time.Duration) crmv1alpha1.Increment {
		i := crmv1alpha1.Increment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(now.Add(-30 * 24 * time.Hour))},
			Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}}}
		i.Status.Phase = phase
		if verifiedAgo > 0 {
			i.Status.Conditions = []metav1.Condition{{Type: crmv1alpha1.ConditionVerified, Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-verifiedAgo))}}
		}
		return i
	}
	projects := []crmv1alpha1.ImplementationProject{project("a", "po@a"), project("b", "po@a"), project("c", "po@c")}
	incs := []crmv1alpha1.Increment{
		inc("a", "sprint-3", crmv1alpha1.IncrementAwaitingAcceptance, 2*time.Hour),
		inc("b", "sprint-7", crmv1alpha1.IncrementAwaitingAcceptance, 50*time.Hour),
		inc("a", "sprint-2", crmv1alpha1.IncrementPromoted, 400*time.Hour),          // decided
		inc("c", "sprint-1", crmv1alpha1.IncrementAwaitingAcceptance, 90*time.Hour), // another owner's
		inc("a", "sprint-4", crmv1alpha1.IncrementAwaitingAcceptance, 0),            // never verified: since its creation
	}
	var got []string
	for _, p := range PendingFor(Identity{User: "po@a"}, projects, incs, now) {
		got = append(got, p.Namespace+"/"+p.Increment.Name+" "+p.Waited.String())
	}
	want := []string{"a/sprint-4 720h0m0s", "b/sprint-7 50h0m0s", "a/sprint-3 2h0m0s"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("pending for po@a: %v, want %v", got, want)
	}
}

func TestWaitedParts(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		key  string
		a, b int
	}{
		{59 * time.Second, "minutes", 0, 0},
		{42 * time.Minute, "minutes", 42, 0},
		{3*time.Hour + 5*time.Minute, "hours-minutes", 3, 5},
		{26 * time.Hour, "days-hours", 1, 2},
		{15*24*time.Hour + 23*time.Hour + 59*time.Minute, "days-hours", 15, 23},
	} {
		key, a, b := WaitedParts(tc.d)
		if key != tc.key || a != tc.a || b != tc.b {
			t.Errorf("%s: %s %d %d, want %s %d %d", tc.d, key, a, b, tc.key, tc.a, tc.b)
		}
	}
}
