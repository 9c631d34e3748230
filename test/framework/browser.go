package framework

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser is a headless Chromium (the Debian package) driven with chromedp,
// writing its screenshots under bin/<dir>.
type Browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

// NewBrowser starts Chromium for t; it stops with the test. Without
// chromium the test fails, unless SKIP_BROWSER=1 asks to skip it.
func NewBrowser(t *testing.T, shotsDir string) *Browser {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("SKIP_BROWSER") == "1" {
			t.Skip("SKIP_BROWSER=1: chromium is not installed")
		}
		t.Fatal("chromium is not installed: hack/test-prerequisites.sh installs it (apt-get install chromium); SKIP_BROWSER=1 skips the browser tests")
	}
	shots := filepath.Join(Root, "bin", shotsDir)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		// The local OpenID providers' certificates are their own.
		chromedp.Flag("ignore-certificate-errors", true))...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	// The first action starts the browser, without a deadline (a deadline
	// there would stop the browser); the rest run under one.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(cancelTimeout)
	return &Browser{t: t, ctx: ctx, shots: shots}
}

// Do runs actions; on failure the test ends with the page's HTML.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		page, _ := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		b.t.Fatalf("%s: %v\n%s", what, err, page)
	}
}

// Text is the trimmed text of the first element sel matches.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("reading %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// WaitText waits until sel's text holds (the page changes by itself, or a
// form's answer replaces it).
func (b *Browser) WaitText(what, sel string, holds func(string) bool) {
	b.t.Helper()
	if err := WaitFor(b.ctx, time.Minute, what, func() (bool, error) {
		s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
		return err == nil && holds(strings.TrimSpace(s)), nil
	}); err != nil {
		b.t.Fatal(err)
	}
}

// Shot writes a screenshot of the whole page as bin/<dir>/<name>.png.
func (b *Browser) Shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// HTML is the page's markup as it is now.
func (b *Browser) HTML() string {
	b.t.Helper()
	page, err := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		b.t.Fatalf("reading the page: %v", err)
	}
	return page
}
