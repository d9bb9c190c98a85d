// Package docs_test checks Pulse's documentation: every relative link in the README and the
// pages under docs/ (and the README files beside the manifests) names a file that exists and,
// when it has a fragment, a heading of that file.
package docs_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = ".."

// pages are the Markdown files whose links are checked, relative to the repository: the README,
// every page under docs/, and the README files of the config folders, which point into docs/.
func pages(t *testing.T, root string) []string {
	t.Helper()
	out := []string{"README.md"}
	for _, dir := range []string{"docs", "config"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
				rel, err := filepath.Rel(root, path)
				if err != nil {
					return err
				}
				out = append(out, filepath.ToSlash(rel))
			}
			return nil
		})
		require.NoError(t, err)
	}
	return out
}

var (
	// inlineLink matches [text](target) and ![alt](target), with an optional "title".
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// codeSpan matches inline code, whose brackets are not links.
	codeSpan = regexp.MustCompile("`+[^`]*`+")
	heading  = regexp.MustCompile(`^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	fence    = regexp.MustCompile("^ {0,3}(```|~~~)")
)

// document is what the checker needs of one Markdown file: its links and its anchors.
type document struct {
	links   []string
	anchors map[string]bool
}

// parse reads the links and heading anchors of a Markdown text, leaving out fenced code blocks
// and code spans. A link's text may run over several lines.
func parse(text string) document {
	doc := document{anchors: map[string]bool{}}
	seen := map[string]int{}
	var prose []string
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		prose = append(prose, line)
		if m := heading.FindStringSubmatch(line); m != nil {
			slug := slugify(m[2])
			if n := seen[slug]; n > 0 {
				doc.anchors[slug+"-"+strconv.Itoa(n)] = true
			} else {
				doc.anchors[slug] = true
			}
			seen[slug]++
		}
	}
	for _, m := range inlineLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(strings.Join(prose, "\n"), ""), -1) {
		doc.links = append(doc.links, m[1])
	}
	return doc
}

// linkText drops a link's target from heading text: "[Guide](x.md)" reads as "Guide".
var linkText = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)

// slugify turns heading text into the anchor GitHub gives it: lower case, letters, digits,
// hyphens and underscores kept, spaces turned into hyphens, everything else dropped.
func slugify(text string) string {
	text = linkText.ReplaceAllString(text, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// brokenLinks returns, for the pages at the given paths under root, every relative link whose
// file does not exist or whose fragment names no heading of its page, as "page: link".
func brokenLinks(t *testing.T, root string, paths []string) []string {
	t.Helper()
	docs := map[string]document{}
	load := func(path string) (document, error) {
		if d, ok := docs[path]; ok {
			return d, nil
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(path)))
		if err != nil {
			return document{}, err
		}
		docs[path] = parse(string(b))
		return docs[path], nil
	}
	var broken []string
	for _, page := range paths {
		doc, err := load(page)
		require.NoError(t, err)
		for _, link := range doc.links {
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			target, fragment, _ := strings.Cut(link, "#")
			resolved := page
			if target != "" {
				resolved = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(page), target)))
			}
			if strings.HasPrefix(resolved, "../") || filepath.IsAbs(target) {
				broken = append(broken, page+": "+link+" (outside the repository)")
				continue
			}
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(resolved))); err != nil {
				broken = append(broken, page+": "+link+" (no such file)")
				continue
			}
			if fragment == "" {
				continue
			}
			if !strings.HasSuffix(resolved, ".md") {
				broken = append(broken, page+": "+link+" (fragment on a file that is not Markdown)")
				continue
			}
			targetDoc, err := load(resolved)
			require.NoError(t, err)
			if !targetDoc.anchors[fragment] {
				broken = append(broken, page+": "+link+" (no such heading)")
			}
		}
	}
	return broken
}

// TestLinksResolve checks every relative link of the README and the docs.
func TestLinksResolve(t *testing.T) {
	t.Parallel()
	paths := pages(t, repoRoot)
	require.Contains(t, paths, "docs/configuration.md", "the walk did not find the docs")
	require.Empty(t, brokenLinks(t, repoRoot, paths))
}

// TestReadmeReachesEveryPage checks that every page under docs/ is linked from the README,
// directly or through another page.
func TestReadmeReachesEveryPage(t *testing.T) {
	t.Parallel()
	reached := map[string]bool{"README.md": true}
	queue := []string{"README.md"}
	for len(queue) > 0 {
		page := queue[0]
		queue = queue[1:]
		b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(page)))
		if err != nil {
			continue // a broken link: TestLinksResolve names it
		}
		for _, link := range parse(string(b)).links {
			target, _, _ := strings.Cut(link, "#")
			if target == "" || strings.Contains(target, "://") || !strings.HasSuffix(target, ".md") {
				continue
			}
			next := filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(page), target)))
			if !reached[next] {
				reached[next] = true
				queue = append(queue, next)
			}
		}
	}
	var unreached []string
	for _, page := range pages(t, repoRoot) {
		if strings.HasPrefix(page, "docs/") && !reached[page] {
			unreached = append(unreached, page)
		}
	}
	require.Empty(t, unreached, "pages under docs/ that no link from the README leads to")
}

// TestBrokenLinksFound checks that the checker reports what it must, on pages written for it.
func TestBrokenLinksFound(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	files := map[string]string{
		"README.md": "# Title\n\n## Two words `here`\n\n## Two words here\n\n" +
			"[ok](docs/a.md) [ok](docs/a.md#the-page) [ok](#two-words-here) [ok](#two-words-here-1)\n" +
			"[ok](https://example.com/nowhere.md) [ok](docs/) `[not a link](missing.md)` [two\nlines](docs/gone.md)\n" +
			"[missing](docs/missing.md) [bad anchor](docs/a.md#nowhere) [bad own anchor](#title-2)\n" +
			"```\n[in a fence](fenced.md)\n```\n",
		"docs/a.md": "# The page\n\n[up](../README.md#title) [outside](../../x.md) [file anchor](../go.mod#x)\n",
		"go.mod":    "module x\n",
	}
	for name, text := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	}
	want := []string{
		"README.md: docs/gone.md (no such file)",
		"README.md: docs/missing.md (no such file)",
		"README.md: docs/a.md#nowhere (no such heading)",
		"README.md: #title-2 (no such heading)",
		"docs/a.md: ../../x.md (outside the repository)",
		"docs/a.md: ../go.mod#x (fragment on a file that is not Markdown)",
	}
	got := brokenLinks(t, root, []string{"README.md", "docs/a.md"})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("broken links (-want +got):\n%s", diff)
	}
}

// TestSlugify checks the anchors headings get.
func TestSlugify(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		heading string
		want    string
	}{
		"plain":            {heading: "Send a notification", want: "send-a-notification"},
		"code":             {heading: "The `pulse` CLI", want: "the-pulse-cli"},
		"punctuation":      {heading: "Scheduling, retries and recovery", want: "scheduling-retries-and-recovery"},
		"link":             {heading: "See [the guide](guide.md)", want: "see-the-guide"},
		"hyphen and slash": {heading: "401 / 403 — auth", want: "401--403--auth"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, slugify(tt.heading)); diff != "" {
				t.Errorf("slugify(%q) (-want +got):\n%s", tt.heading, diff)
			}
		})
	}
}
