package resources

import (
	"fmt"
	"sort"
	"strings"

	"github.com/distribution/reference"

	"github.com/crmops/crm-operator/internal/crm"
)

// AnyRegistry as a key of Images.Mirrors mirrors every registry that has no
// mirror of its own.
const AnyRegistry = "*"

// The components whose image Images.Overrides can replace, besides the
// products (by their name: odoo, espocrm, suitecrm, twenty).
const (
	ImagePostgreSQL = "postgresql"
	ImageMariaDB    = "mariadb"
	ImageRedis      = "redis"
	ImageMail       = "mail"
)

// Images is where the pods the operator creates pull their default images
// from: an air-gapped cluster serves them from a mirror, or from images of
// its own. An image written in a spec (spec.image) is pulled as written.
type Images struct {
	// Mirrors maps a source registry (docker.io, ghcr.io, ...; AnyRegistry
	// for every other) to the registry and path prefix that serves its
	// repositories: docker.io -> mirror.example.com/dockerhub pulls
	// docker.io/library/postgres:17 as mirror.example.com/dockerhub/library/postgres:17.
	Mirrors map[string]string
	// Overrides maps a component to the repository of its image; the
	// version is its tag unless the override has a tag or digest. It is
	// pulled as written (no mirror).
	Overrides map[string]string
}

// ParseImages checks mirrors ("registry=prefix") and overrides
// ("component=repository[:tag]"), as the manager's flags give them.
func ParseImages(mirrors, overrides []string) (Images, error) {
	im := Images{Mirrors: map[string]string{}, Overrides: map[string]string{}}
	for _, m := range mirrors {
		from, to, ok := strings.Cut(m, "=")
		if !ok || from == "" || to == "" {
			return Images{}, fmt.Errorf("image mirror %q: want registry=prefix (docker.io=mirror.example.com/dockerhub, or *=prefix for every registry)", m)
		}
		if _, err := reference.ParseNormalizedNamed(strings.TrimSuffix(to, "/") + "/x"); err != nil {
			return Images{}, fmt.Errorf("image mirror %q: %s is not a registry and path: %w", m, to, err)
		}
		im.Mirrors[from] = strings.TrimSuffix(to, "/")
	}
	for _, o := range overrides {
		component, image, ok := strings.Cut(o, "=")
		if !ok || component == "" || image == "" {
			return Images{}, fmt.Errorf("image override %q: want component=repository[:tag] (components: %s and the products)", o, strings.Join(overridable(), ", "))
		}
		if _, err := reference.ParseNormalizedNamed(image); err != nil {
			return Images{}, fmt.Errorf("image override %q: %w", o, err)
		}
		im.Overrides[component] = image
	}
	return im, nil
}

func overridable() []string {
	c := []string{ImagePostgreSQL, ImageMariaDB, ImageRedis, ImageMail}
	sort.Strings(c)
	return c
}

// Resolve is the image component runs: its override, else repository
// from its registry's mirror; tagged version unless it has a tag or digest.
func (im Images) Resolve(component, repository, version string) string {
	if o := im.Overrides[component]; o != "" {
		return crm.Image(o, version)
	}
	image := crm.Image(repository, version)
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image // a default of the operator's own; its tests parse them all
	}
	mirror, ok := im.Mirrors[reference.Domain(named)]
	if !ok {
		mirror, ok = im.Mirrors[AnyRegistry]
	}
	if !ok {
		return image
	}
	return mirror + "/" + strings.TrimPrefix(named.String(), reference.Domain(named)+"/")
}
