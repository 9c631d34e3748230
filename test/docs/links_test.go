// Package docs checks the repository's links: every relative link and
// anchor in README.md and docs/, every runbook_url of the alert rules, and
// every README.md or docs/ page (and anchor) that code and manifests name.
// A page that moves or a heading that changes breaks a test here, not a
// reader's link.
package docs

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode"
)

// repoURL is where runbook_urls point: the repository's files on GitHub.
const repoURL = "https://github.com/crmops/crm-operator/blob/main/"

func TestRepositoryLinksResolve(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	report, err := checkRepository(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range report.dead {
		t.Errorf("%s: %s: %s", d.where, d.link, d.why)
	}
	// A scan that finds nothing checks nothing: the repository has pages,
	// runbooks and code naming pages.
	if report.pages < 10 || report.runbooks == 0 || report.codeRefs == 0 {
		t.Errorf("checked %d pages, %d runbook_urls, %d references in code: expected at least 10, 1 and 1",
			report.pages, report.runbooks, report.codeRefs)
	}
	t.Logf("checked %d pages (%d links), %d runbook_urls, %d references in code",
		report.pages, report.links, report.runbooks, report.codeRefs)
}

func TestTheCheckerFindsDeadLinks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		dead  []string // links reported, in report order
	}{{
		name: "a missing file and a missing anchor",
		files: map[string]string{
			"README.md": "# Title\n\nSee [gone](no-such-page.md) and [nowhere](#no-such-heading) but [here](#title).\n",
		},
		dead: []string{"no-such-page.md", "#no-such-heading"},
	}, {
		name: "anchors of another page, headings with punctuation and code",
		files: map[string]string{
			"README.md": "# R\n\n[a](docs/guide.md#gdpr-the-policy-art-17) [b](docs/guide.md#local-cluster-make-run-and-tests)\n" +
				"[c](docs/guide.md#missing) [d](docs/guide.md)\n",
			"docs/guide.md": "# Guide\n\n## GDPR: the policy (Art. 17)\n\n## Local cluster (`make run`) and tests\n",
		},
		dead: []string{"docs/guide.md#missing"},
	}, {
		name: "duplicate headings get -1, -2",
		files: map[string]string{
			"docs/a.md": "# A\n\n## Setup\n\n## Setup\n\n[first](#setup) [second](#setup-1) [third](#setup-2)\n",
		},
		dead: []string{"#setup-2"},
	}, {
		name: "links in code, web links and images",
		files: map[string]string{
			"docs/a.md": "# A\n\n```md\n[x](fenced.md)\n# Not a heading\n```\n\n`[y](inline.md)` [web](https://example.com/x.md)\n" +
				"![shot](pic.png) ![gone](missing.png) [up](../README.md) [out](../../outside.md) [hash](#not-a-heading)\n",
			"docs/pic.png": "png",
			"README.md":    "# R\n",
		},
		dead: []string{"missing.png", "../../outside.md", "#not-a-heading"},
	}, {
		name: "runbook_urls point into the repository",
		files: map[string]string{
			"docs/alerts.md": "# Alerts\n\n## CRMBackupOverdue\n",
			"charts/rule.yaml": "runbook_url: " + repoURL + "docs/alerts.md#crmbackupoverdue\n" +
				"runbook_url: " + repoURL + "docs/alerts.md#crmgone\n" +
				"runbook_url: https://example.com/runbooks#crmbackupoverdue\n",
		},
		dead: []string{repoURL + "docs/alerts.md#crmgone", "https://example.com/runbooks#crmbackupoverdue"},
	}, {
		name: "pages named in code and manifests",
		files: map[string]string{
			"docs/guide.md": "# Guide\n\n## Deletion\n",
			"x/main.go": "// see " + "docs/guide.md#deletion, " + "docs/guide.md#retention and " + "docs/gone.md\n" +
				"package x\n",
			"config/a.yaml": "# README.md#install\n",
			"README.md":     "# R\n",
		},
		dead: []string{"README.md#install", "docs/guide.md#retention", "docs/gone.md"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tc.files {
				p := filepath.Join(root, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			report, err := checkRepository(root)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range report.dead {
				got = append(got, d.link)
			}
			if strings.Join(got, "\n") != strings.Join(tc.dead, "\n") {
				t.Errorf("reported %q, want %q", got, tc.dead)
			}
		})
	}
}

func TestSlugFollowsGitHub(t *testing.T) {
	for heading, want := range map[string]string{
		"Backups and restores":                                   "backups-and-restores",
		"Sprint increments: test, acceptance, production":        "sprint-increments-test-acceptance-production",
		"Erasure requests (Art. 17)":                             "erasure-requests-art-17",
		"A real node (`REAL_NODE=1 make run`, `make test-real`)": "a-real-node-real_node1-make-run-make-test-real",
		"The [kubectl](https://kubernetes.io) plugin":            "the-kubectl-plugin",
		"CRMBackupOverdue":                                       "crmbackupoverdue",
		"Memory at a thousand projects ##":                       "memory-at-a-thousand-projects",
		"Über die Größe":                                         "über-die-größe",
	} {
		if got := slug(headingText(heading)); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

type deadLink struct{ where, link, why string }

type report struct {
	dead                             []deadLink
	pages, links, runbooks, codeRefs int
}

// checkRepository checks README.md and docs/**/*.md, the runbook_urls of
// every YAML file and the pages named in Go, YAML and shell files under root.
func checkRepository(root string) (report, error) {
	c := &checker{root: root, anchors: map[string]map[string]bool{}}
	var r report
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		if d.IsDir() {
			if rel == ".git" || rel == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		if rel == checkerSource || !d.Type().IsRegular() {
			return nil // its fixtures are dead links on purpose; symlinks lead outside
		}
		isPage := rel == "README.md" || strings.HasPrefix(rel, "docs/") && strings.HasSuffix(rel, ".md")
		ext := path.Ext(rel)
		isYAML := ext == ".yaml" || ext == ".yml"
		isCode := ext == ".go" || ext == ".sh" || isYAML
		if !isPage && !isCode {
			return nil
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while the walk ran: a build's scratch file
		} else if err != nil {
			return err
		}
		if isPage {
			r.pages++
			for _, l := range markdownLinks(string(data)) {
				r.links++
				if why := c.check(rel, l.target); why != "" {
					r.dead = append(r.dead, deadLink{fmt.Sprintf("%s:%d", rel, l.line), l.target, why})
				}
			}
		}
		if isYAML {
			for _, l := range find(runbookURL, string(data)) {
				r.runbooks++
				why := "not a page of this repository (" + repoURL + "...)"
				if target, ok := strings.CutPrefix(l.target, repoURL); ok {
					why = c.check(rel, "/"+target)
				}
				if why != "" {
					r.dead = append(r.dead, deadLink{fmt.Sprintf("%s:%d", rel, l.line), l.target, why})
				}
			}
		}
		if isCode {
			for _, l := range find(pageInCode, string(data)) {
				r.codeRefs++
				if why := c.check(rel, "/"+l.target); why != "" {
					r.dead = append(r.dead, deadLink{fmt.Sprintf("%s:%d", rel, l.line), l.target, why})
				}
			}
		}
		return nil
	})
	return r, err
}

// checkerSource is this file, relative to the repository's root.
const checkerSource = "test/docs/links_test.go"

var (
	// runbookURL is an alert rule's runbook annotation.
	runbookURL = regexp.MustCompile(`runbook_url:\s*["']?([^"'\s]+)`)
	// pageInCode is README.md or a page of docs/, with its anchor, named
	// from the repository's root (not part of a longer path or URL).
	pageInCode = regexp.MustCompile(`(?:^|[^A-Za-z0-9_./-])((?:README\.md|docs/[A-Za-z0-9_./-]*\.md)(?:#[A-Za-z0-9_-]+)?)`)
)

type checker struct {
	root    string
	anchors map[string]map[string]bool // page -> its anchors
}

var scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// check says why target, a link written in the file from (a leading /
// means the repository's root), does not resolve; "" if it does.
func (c *checker) check(from, target string) string {
	if target == "" {
		return "empty link"
	}
	if scheme.MatchString(target) {
		return "" // http(s), mailto: not this repository's
	}
	file, fragment, _ := strings.Cut(target, "#")
	file, _, _ = strings.Cut(file, "?")
	if unescaped, err := url.PathUnescape(file); err == nil {
		file = unescaped
	}
	var rel string
	switch {
	case file == "":
		rel = from // an anchor of the page itself
	case strings.HasPrefix(file, "/"):
		rel = path.Clean(strings.TrimPrefix(file, "/"))
	default:
		rel = path.Clean(path.Join(path.Dir(from), file))
	}
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "outside the repository"
	}
	info, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(rel)))
	if err != nil {
		return "no such file"
	}
	if fragment == "" || info.IsDir() || path.Ext(rel) != ".md" {
		return "" // line anchors of source files are GitHub's
	}
	anchors, err := c.anchorsOf(rel)
	if err != nil {
		return err.Error()
	}
	if !anchors[fragment] {
		return "no heading with this anchor in " + rel
	}
	return ""
}

// anchorsOf reads the anchors of page rel once.
func (c *checker) anchorsOf(rel string) (map[string]bool, error) {
	if a, ok := c.anchors[rel]; ok {
		return a, nil
	}
	data, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	a := headingAnchors(string(data))
	c.anchors[rel] = a
	return a, nil
}

type link struct {
	line   int
	target string
}

var (
	inlineLink = regexp.MustCompile(`\]\(\s*<?([^()\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)`)
	htmlLink   = regexp.MustCompile(`(?:href|src)\s*=\s*"([^"]*)"`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
	notNewline = regexp.MustCompile(`[^\n]`)
	atxHeading = regexp.MustCompile(`^ {0,3}#{1,6}(?:[ \t]+(.*))?$`)
	htmlAnchor = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
)

// markdownLinks returns the link targets of a page, outside code blocks
// and code spans; a link to the page itself ("#anchor") is kept as written
// and resolved against the page by the caller.
func markdownLinks(src string) []link {
	text := blankCode(src)
	var out []link
	for _, re := range []*regexp.Regexp{inlineLink, refLink, htmlLink} {
		out = append(out, find(re, text)...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].line < out[j].line })
	return out
}

// blankCode replaces fenced code blocks and code spans by spaces, keeping
// the lines where they are.
func blankCode(src string) string {
	lines := strings.Split(src, "\n")
	fence := ""
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		switch {
		case fence != "":
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			lines[i] = ""
		case strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~"):
			fence = trimmed[:3]
			lines[i] = ""
		}
	}
	return codeSpan.ReplaceAllStringFunc(strings.Join(lines, "\n"), func(s string) string {
		return notNewline.ReplaceAllString(s, " ")
	})
}

// find returns the first group of every match of re, with its line.
func find(re *regexp.Regexp, text string) []link {
	var out []link
	for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
		out = append(out, link{line: 1 + strings.Count(text[:m[2]], "\n"), target: text[m[2]:m[3]]})
	}
	return out
}

// headingAnchors returns the anchors GitHub gives a page's headings (a
// heading met again gets -1, -2, ...) and its explicit <a id> anchors.
func headingAnchors(src string) map[string]bool {
	anchors := map[string]bool{}
	occurrences := map[string]int{}
	fence := ""
	for _, l := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(l)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(l, -1) {
			anchors[m[1]] = true
		}
		m := atxHeading.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		base := slug(headingText(m[1]))
		s := base
		for {
			if _, taken := occurrences[s]; !taken {
				break
			}
			occurrences[base]++
			s = fmt.Sprintf("%s-%d", base, occurrences[base])
		}
		occurrences[s] = 0
		anchors[s] = true
	}
	return anchors
}

var (
	closingHashes = regexp.MustCompile(`[ \t]+#+[ \t]*$`)
	mdLinkText    = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTag       = regexp.MustCompile(`<[^>]+>`)
)

// headingText is a heading's text as GitHub renders it: no closing #s,
// links by their text, no HTML tags.
func headingText(h string) string {
	h = closingHashes.ReplaceAllString(strings.TrimSpace(h), "")
	h = mdLinkText.ReplaceAllString(h, "$1")
	return htmlTag.ReplaceAllString(h, "")
}

// slug is GitHub's anchor of a heading (github-slugger): lower case,
// punctuation removed except '-' and '_', each space a '-'.
func slug(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// repoRoot is the directory of go.mod above the test's directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test's directory")
		}
		dir = parent
	}
}
