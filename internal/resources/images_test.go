package resources

import (
	"strings"
	"testing"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
)

func TestImagesResolve(t *testing.T) {
	mirrored := Images{Mirrors: map[string]string{"docker.io": "mirror.example.com/dockerhub", AnyRegistry: "mirror.example.com/other"}}
	cases := []struct {
		name                           string
		images                         Images
		component, repository, version string
		want                           string
	}{
		{"no mirror, no override: the default with its version", Images{}, "postgresql", "postgres", "17.9", "postgres:17.9"},
		{"a short Docker Hub name is mirrored under library/", mirrored, "postgresql", "postgres", "17.9", "mirror.example.com/dockerhub/library/postgres:17.9"},
		{"a Docker Hub repository keeps its path", mirrored, "odoo", "docker.io/library/odoo", "18.0", "mirror.example.com/dockerhub/library/odoo:18.0"},
		{"another registry goes to the catch-all mirror", mirrored, "x", "ghcr.io/crmops/crm-operator", "v0.1.0", "mirror.example.com/other/crmops/crm-operator:v0.1.0"},
		{"a registry without a mirror and no catch-all is pulled from the source",
			Images{Mirrors: map[string]string{"docker.io": "m.example.com"}}, "x", "quay.io/a/b", "1", "quay.io/a/b:1"},
		{"a default with its own tag keeps it", mirrored, "mail", "docker.io/axllent/mailpit:v1.30.5", "", "mirror.example.com/dockerhub/axllent/mailpit:v1.30.5"},
		{"an override without a tag gets the version", Images{Overrides: map[string]string{"odoo": "registry.local:5000/crm-local/odoo"}, Mirrors: mirrored.Mirrors},
			"odoo", "docker.io/library/odoo", "18.0", "registry.local:5000/crm-local/odoo:18.0"},
		{"an override with a tag is pulled as written", Images{Overrides: map[string]string{"redis": "registry.local:5000/redis:7.4-alpine"}},
			"redis", "redis", "7.4", "registry.local:5000/redis:7.4-alpine"},
		{"an override of another component changes nothing here", Images{Overrides: map[string]string{"mariadb": "r.local/mariadb"}},
			"postgresql", "postgres", "17.9", "postgres:17.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.images.Resolve(tc.component, tc.repository, tc.version); got != tc.want {
				t.Errorf("Resolve(%q, %q, %q) = %q, want %q", tc.component, tc.repository, tc.version, got, tc.want)
			}
		})
	}
}

func TestParseImages(t *testing.T) {
	im, err := ParseImages([]string{"docker.io=mirror.example.com/dockerhub/", "*=mirror.example.com/other"}, []string{"odoo=registry.local:5000/crm-local/odoo"})
	if err != nil {
		t.Fatal(err)
	}
	if im.Mirrors["docker.io"] != "mirror.example.com/dockerhub" || im.Mirrors["*"] != "mirror.example.com/other" || im.Overrides["odoo"] != "registry.local:5000/crm-local/odoo" {
		t.Errorf("parsed %+v", im)
	}
	for _, bad := range []struct {
		mirrors, overrides []string
		says               string
	}{
		{[]string{"docker.io"}, nil, "want registry=prefix"},
		{[]string{"docker.io=Mirror With Spaces"}, nil, "is not a registry and path"},
		{nil, []string{"odoo"}, "want component=repository"},
		{nil, []string{"odoo=not an image"}, "image override"},
	} {
		if _, err := ParseImages(bad.mirrors, bad.overrides); err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("ParseImages(%q, %q) = %v, want an error saying %q", bad.mirrors, bad.overrides, err, bad.says)
		}
	}
}

// The manager's --image override replaces the operator's default image of a
// product; a project that names its own spec.product.image (a build with a
// fix, a private registry) runs that one.
func TestAProjectsOwnImageWinsOverTheManagersOverride(t *testing.T) {
	overridden := Images{Overrides: map[string]string{"suitecrm": "mirror.example.com/suitecrm"}}
	for _, tc := range []struct {
		name, projectImage string
		want               string
	}{
		{"the default image, overridden", "", "mirror.example.com/suitecrm:8.9.0"},
		{"the project's own image, as written", "registry.example.com/acme/suitecrm-fixed", "registry.example.com/acme/suitecrm-fixed:8.9.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in *EnvironmentInput
			for _, c := range Combinations("acme") {
				if c.Input.Project.Spec.Product.Name == crmv1alpha1.ProductSuiteCRM && c.Input.Env.Spec.Image == "" {
					in = c.Input
					break
				}
			}
			in.Images = overridden
			in.Version = "8.9.0"
			in.Project.Spec.Product.Image = tc.projectImage
			prof, err := crm.For(in.Project.Spec.Product)
			if err != nil {
				t.Fatal(err)
			}
			in.Profile = prof
			if got := Image(in); got != tc.want {
				t.Errorf("Image = %q, want %q", got, tc.want)
			}
		})
	}
}
