package metrics_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/metrics"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// browser starts a headless Chromium for the test and returns a context driving one tab of
// it. The browser is stopped when the test ends, and the test fails if it hangs.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(pulsetest.Chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox.
		opts = append(opts, chromedp.NoSandbox)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)
	return ctx
}

// pageErrors collects what the browser reports while it shows the pages: every console API
// call (the pages have no scripts, so any is unexpected), uncaught exceptions, and the
// browser's own warnings and errors (failed loads, refused content).
type pageErrors struct {
	mu   sync.Mutex
	seen []string
}

// record is a chromedp.Listen func: it runs on the tab's reading goroutine, so it only
// appends.
func (e *pageErrors) record(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			args = append(args, string(a.Value)+a.Description)
		}
		line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		line = fmt.Sprintf("exception: %s at %s:%d", ev.ExceptionDetails.Text, ev.ExceptionDetails.URL, ev.ExceptionDetails.LineNumber)
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
			line = fmt.Sprintf("%s %s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
		}
	}
	if line != "" {
		e.mu.Lock()
		e.seen = append(e.seen, line)
		e.mu.Unlock()
	}
}

func (e *pageErrors) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.seen)
}

// idTexts reads the text of every element with an id on the page the browser shows.
const idTexts = `Object.fromEntries(Array.from(document.querySelectorAll('[id]'), e => [e.id, e.textContent.trim()]))`

// TestStatusPageInChromium loads the status page in a real headless Chromium: it renders
// without console errors, shows what the datastores hold, and its link to a failed
// notification opens that notification's timeline. Screenshots of both pages are kept as
// test artifacts.
func TestStatusPageInChromium(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	b := setup(t)
	b.fixture(t)
	base := servePage(t, b.exporter())
	failed, err := b.store.LatestFailures(context.Background(), 1)
	require.NoError(t, err)
	require.Len(t, failed, 1)

	var errs pageErrors
	require.NoError(t, chromedp.Listen(ctx, errs.record))
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(base+metrics.StatusPath))
	require.NoError(t, err)
	require.EqualValues(t, 200, resp.Status)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#failures"))))
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](idTexts))
	require.NoError(t, err)
	got := map[string]string{}
	for id := range fixturePage() {
		got[id] = shown[id]
	}
	require.Equal(t, fixturePage(), got)
	saveScreenshot(ctx, t, "statuspage.png")

	// The newest failure's link opens its timeline.
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#failures a")))
	require.NoError(t, err)
	require.EqualValues(t, 200, resp.Status)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#timeline"))))
	location, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, base+metrics.TimelinePath+failed[0].ID, location)
	shown, err = chromedp.Run(ctx, chromedp.Evaluate[map[string]string](idTexts))
	require.NoError(t, err)
	require.Equal(t, failed[0].ID, shown["notification-id"])
	require.Equal(t, string(notification.Failed), shown["notification-status"])
	require.Equal(t, notification.MaskRecipient(failed[0].Channel, failed[0].To), shown["notification-to"])
	require.Contains(t, shown["timeline"], "attempt 1: permanent")
	saveScreenshot(ctx, t, "statuspage-timeline.png")

	require.Empty(t, errs.all(), "the pages reported errors")
}

// saveScreenshot saves a PNG screenshot of the page the browser shows as a test artifact, and
// logs where.
func saveScreenshot(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NotEmpty(t, png)
	path := pulsetest.ArtifactPath(t, name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}
