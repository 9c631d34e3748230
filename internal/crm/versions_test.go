package crm

import (
	"strings"
	"testing"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

func TestUpgradePaths(t *testing.T) {
	cases := []struct {
		product  crmv1alpha1.ProductName
		from, to string
		refused  string // part of the error, "" when allowed
	}{
		{crmv1alpha1.ProductOdoo, "18.0", "18.0", ""},
		{crmv1alpha1.ProductOdoo, "18.0", "18.0-20260901", ""},
		{crmv1alpha1.ProductOdoo, "17.0", "18.0", "changes the major version"},
		{crmv1alpha1.ProductOdoo, "18.0", "17.0", "downgrade"},
		{crmv1alpha1.ProductEspoCRM, "10.0.3", "10.1.0", ""},
		{crmv1alpha1.ProductEspoCRM, "10.0.3", "11.0.0", ""},
		{crmv1alpha1.ProductEspoCRM, "10.0.3", "12.0.0", "skips a major version"},
		{crmv1alpha1.ProductEspoCRM, "9.3.10", "10.0.3", "volume layout"},
		{crmv1alpha1.ProductTwenty, "v1.8.0", "v1.9.0", ""},
		{crmv1alpha1.ProductTwenty, "v1.8.0", "v1.8.3", ""},
		{crmv1alpha1.ProductTwenty, "v1.8.0", "v1.10.0", "one minor version at a time (next: v1.9)"},
		{crmv1alpha1.ProductTwenty, "v1.8.0", "v3.0.0", "skips a major version"},
		{crmv1alpha1.ProductSuiteCRM, "8.8.0", "8.9.0", ""},
		{crmv1alpha1.ProductSuiteCRM, "7.14.6", "8.9.0", "changes the major version"},
		// Tags that name no release are not judged.
		{crmv1alpha1.ProductOdoo, "18.0", "latest", ""},
		{crmv1alpha1.ProductTwenty, "v1.8.0", "sprint-12", ""},
	}
	for _, tc := range cases {
		p, err := For(crmv1alpha1.Product{Name: tc.product})
		if err != nil {
			t.Fatal(err)
		}
		err = p.CheckUpgrade(tc.from, tc.to)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s %s -> %s refused: %v", tc.product, tc.from, tc.to, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%s %s -> %s: error %v, want one saying %q", tc.product, tc.from, tc.to, err, tc.refused)
		case err != nil && (!strings.Contains(err.Error(), tc.from) || !strings.Contains(err.Error(), tc.to)):
			t.Errorf("%s: the error does not name both versions: %v", tc.product, err)
		}
	}
}

func TestSupportedVersions(t *testing.T) {
	espo, _ := For(crmv1alpha1.Product{Name: crmv1alpha1.ProductEspoCRM})
	// 9.x has another layout; 10.0.0-10.0.2's entrypoint installs or
	// migrates on every start, before the promotion's backup.
	for _, v := range []string{"9.1.8", "10.0.0", "10.0.2"} {
		if err := espo.CheckVersion(v); err == nil || !strings.Contains(err.Error(), "10.0.3") {
			t.Errorf("EspoCRM %s accepted: %v", v, err)
		}
	}
	for _, v := range []string{"10.0.3", "10.1", "latest"} {
		if err := espo.CheckVersion(v); err != nil {
			t.Errorf("EspoCRM %s refused: %v", v, err)
		}
	}
}

// Every fact of a contract names the source it was read from.
func TestEveryFactIsCited(t *testing.T) {
	for _, name := range []crmv1alpha1.ProductName{crmv1alpha1.ProductSuiteCRM, crmv1alpha1.ProductEspoCRM, crmv1alpha1.ProductOdoo, crmv1alpha1.ProductTwenty} {
		p, _ := For(crmv1alpha1.Product{Name: name})
		if len(p.Facts) < 5 {
			t.Errorf("%s: %d facts", name, len(p.Facts))
		}
		for _, f := range p.Facts {
			if f.Source == "" || f.Fact == "" {
				t.Errorf("%s: fact %q has no source", name, f.Topic)
			}
		}
	}
}
