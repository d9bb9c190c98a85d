package pulsetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Chromium returns the path of a Chromium binary for tests that drive a real browser. Without
// one the test is skipped, or failed when CI=true (make datastores installs Debian's chromium).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	skipOrFail(t, "chromium not found (make datastores installs it; or apt-get install -y chromium)")
	return ""
}

// ArtifactPath returns where a test writes a file meant to outlive the run, such as a
// screenshot: name under the directory PULSE_TEST_ARTIFACTS names, or under
// $TMPDIR/pulse-artifacts. The directory is created.
func ArtifactPath(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("PULSE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "pulse-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create the test artifacts directory: %v", err)
	}
	return filepath.Join(dir, name)
}
