package validate_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	validate "github.com/pulse-knative/pulse/config/validate"
)

// The platforms every image is built for, as ko.yaml's defaultPlatforms.
var platforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64"},
}

// The machines the binaries must be built for, by architecture.
var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// TestKoResolve runs the pinned ko for real, as `ko apply` would before handing the YAML to
// kubectl, on config/ exactly as users name it: `-Rf config/` and `-f config/`.
//
// The recursive run builds every function for both platforms on a base image the test makes,
// pushes them to a registry served in-process, and rewrites the ko:// images. Every ko://
// image must become a digest in that registry, each an index of both platforms whose
// entrypoint is the function's binary, built for that platform. Both runs must send every
// object of their files exactly once, the namespace first (TestConfigLayout says which files
// each command takes). It needs no network besides the Go module proxy for the first build of
// ko. With -short it is skipped: it takes minutes on two cores.
func TestKoResolve(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every function for two platforms")
	}
	t.Parallel()

	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	base := pushBaseImage(t, host)
	ko := koBinary(t)

	// The manifests to resolve, with the images each container had before.
	before, err := validate.Load(repoRoot, "config")
	require.NoError(t, err)
	images := map[string]validate.Function{}
	var pending []string
	for _, w := range before.Workloads() {
		for _, ctr := range w.Pod.Containers {
			if !strings.HasPrefix(ctr.Image, validate.KoPrefix) {
				continue
			}
			fn, ok := validate.FunctionOf(ctr.Image)
			require.True(t, ok, "%s: %s is not in validate.Functions", w.Doc, ctr.Image)
			if !functionDirExists(fn) {
				pending = append(pending, fn.Dir())
			}
			images[containerKey(w.Doc, ctr)] = fn
		}
	}
	require.NotEmpty(t, images)
	args := []string{"-Rf", "config"}
	if len(pending) > 0 {
		// ko cannot build a package that is not there yet: resolve a copy without the
		// documents that run one.
		args = []string{"-f", filteredCopy(t, before, pending)}
		t.Logf("not built, their packages have not landed yet: %s", strings.Join(pending, ", "))
	}

	after := koResolve(t, ko, host, base, platformList(), args...)
	if len(pending) == 0 {
		checkApplied(t, after)
		if diff := cmp.Diff(objectKeys(before.Applied), objectKeys(after)); diff != "" {
			t.Errorf("ko resolve -Rf config: objects (-want +got):\n%s", diff)
		}
	}

	checked := map[string]bool{}
	for _, w := range (&validate.Set{Applied: after}).Workloads() {
		for _, ctr := range w.Pod.Containers {
			fn, ok := images[containerKey(w.Doc, ctr)]
			if !ok {
				require.NotContains(t, ctr.Image, host, "%s: a container without a ko:// image was rewritten", w.Doc)
				continue
			}
			t.Run(containerKey(w.Doc, ctr), func(t *testing.T) {
				ref, err := name.NewDigest(ctr.Image)
				require.NoError(t, err, "%s must be a digest reference", ctr.Image)
				require.Equal(t, host, ref.Context().RegistryStr(), "pushed to the test registry")
				if !checked[ref.DigestStr()] {
					checkImage(t, ref, fn)
					checked[ref.DigestStr()] = true
				}
			})
			delete(images, containerKey(w.Doc, ctr))
		}
	}
	for key, fn := range images {
		if !slices.Contains(pending, fn.Dir()) {
			t.Errorf("%s: not in ko's output", key)
		}
	}
	if len(pending) > 0 {
		return
	}

	// The command users type. One platform is enough to see which files ko takes; the images
	// were checked above.
	top, err := validate.LoadTop(repoRoot, "config")
	require.NoError(t, err)
	flat := koResolve(t, ko, host, base, platforms[0].String(), "-f", "config/")
	checkApplied(t, flat)
	if diff := cmp.Diff(objectKeys(top.Applied), objectKeys(flat)); diff != "" {
		t.Errorf("ko resolve -f config/: objects (-want +got):\n%s", diff)
	}
	for _, w := range (&validate.Set{Applied: flat}).Workloads() {
		for _, ctr := range w.Pod.Containers {
			require.NotContains(t, ctr.Image, validate.KoPrefix, "%s: every ko:// reference must be resolved", w.Doc)
		}
	}
}

// koResolve runs `ko resolve` with the file arguments from the repository's root, pushing to
// the registry at host on the base image base, and returns the documents it prints, decoded
// strictly.
func koResolve(t *testing.T, ko, host, base, platforms string, files ...string) []*validate.Document {
	t.Helper()
	args := append([]string{"resolve", "--platform=" + platforms}, files...)
	cmd := exec.CommandContext(t.Context(), ko, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(koEnviron(),
		"KO_DOCKER_REPO="+host+"/pulse",
		"KO_DEFAULTBASEIMAGE="+base,
		// No credentials of the machine's user: the registry is anonymous.
		"DOCKER_CONFIG="+t.TempDir(),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	require.NoError(t, cmd.Run(), "ko %s:\n%s", strings.Join(args, " "), stderr.String())
	t.Logf("ko %s took %s", strings.Join(args, " "), time.Since(start).Round(time.Second))

	require.NotContains(t, stdout.String(), validate.KoPrefix, "every ko:// reference must be resolved")
	docs, err := validate.Decode("resolved", stdout.Bytes())
	require.NoError(t, err, "ko's output must still decode strictly")
	return docs
}

// checkImage checks that ref is an index of exactly the platforms, each image running the
// function's binary, built for its platform.
func checkImage(t *testing.T, ref name.Digest, fn validate.Function) {
	t.Helper()
	idx, err := remote.Index(ref)
	require.NoError(t, err, "%s must be an image index", ref)
	manifest, err := idx.IndexManifest()
	require.NoError(t, err)
	var got []string
	for _, desc := range manifest.Manifests {
		require.NotNil(t, desc.Platform, "%s: a manifest without a platform", ref)
		got = append(got, desc.Platform.String())
		img, err := idx.Image(desc.Digest)
		require.NoError(t, err)
		cfg, err := img.ConfigFile()
		require.NoError(t, err)
		binary := path.Join("/ko-app", fn.Name())
		require.Equal(t, []string{binary}, cfg.Config.Entrypoint, "%s %s: entrypoint", ref, desc.Platform)
		require.Equal(t, desc.Platform.Architecture, cfg.Architecture)
		require.NotContains(t, []string{"", "0", "root"}, cfg.Config.User, "the image must not run as root")

		exe := readFile(t, img, strings.TrimPrefix(binary, "/"))
		f, err := elf.NewFile(bytes.NewReader(exe))
		require.NoError(t, err, "%s is not an ELF binary", binary)
		require.Equal(t, machines[desc.Platform.Architecture], f.Machine, "%s %s: built for the wrong machine", ref, desc.Platform)
	}
	require.ElementsMatch(t, []string{"linux/amd64", "linux/arm64"}, got, "%s: platforms", ref)
}

// readFile returns a file of the image's flattened filesystem; ko's binary layer is the last
// one that holds it.
func readFile(t *testing.T, img v1.Image, file string) []byte {
	t.Helper()
	layers, err := img.Layers()
	require.NoError(t, err)
	for i := len(layers) - 1; i >= 0; i-- {
		rc, err := layers[i].Uncompressed()
		require.NoError(t, err)
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			if strings.TrimPrefix(h.Name, "/") == file {
				b, err := io.ReadAll(tr)
				require.NoError(t, err)
				rc.Close()
				return b
			}
		}
		rc.Close()
	}
	t.Fatalf("no %s in the image", file)
	return nil
}

// pushBaseImage pushes a base image for both platforms, non-root like the real one
// (uid 65532), as an OCI index, and returns its digest reference.
func pushBaseImage(t *testing.T, host string) string {
	t.Helper()
	passwd := "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	layer, err := tarLayer(map[string]string{"etc/passwd": passwd})
	require.NoError(t, err)
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
		require.NoError(t, err)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		cfg, err := img.ConfigFile()
		require.NoError(t, err)
		cfg = cfg.DeepCopy()
		cfg.OS, cfg.Architecture = p.OS, p.Architecture
		cfg.Config.User = "65532"
		img, err = mutate.ConfigFile(img, cfg)
		require.NoError(t, err)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	ref, err := name.ParseReference(host + "/base:nonroot")
	require.NoError(t, err)
	require.NoError(t, remote.WriteIndex(ref, idx))
	digest, err := idx.Digest()
	require.NoError(t, err)
	return host + "/base@" + digest.String()
}

// tarLayer is an OCI layer holding the files.
func tarLayer(files map[string]string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, file := range slices.Sorted(func(yield func(string) bool) {
		for f := range files {
			if !yield(f) {
				return
			}
		}
	}) {
		if err := tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Size: int64(len(files[file])), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(files[file])); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// koBinary returns the ko pinned by this module's tool directive, built (or found in the
// build cache) by the go command.
func koBinary(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	// Only stdout names the binary: on a cold module cache the go command reports its
	// downloads ("go: downloading ...") on stderr, which must not become part of the path.
	cmd := exec.CommandContext(ctx, "go", "tool", "-n", "ko")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go tool -n ko: %s", stderr.String())
	ko := strings.TrimSpace(string(out))
	require.True(t, filepath.IsAbs(ko), "go tool -n ko printed %q, not the path of a binary", ko)
	return ko
}

// koEnviron is the test's environment without what would change ko's behaviour behind the
// test's back: KO_* settings and VERSION (so the ldflags' fallback is what gets exercised).
func koEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KO_") || strings.HasPrefix(kv, "VERSION=") || strings.HasPrefix(kv, "DOCKER_CONFIG=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func platformList() string {
	var ps []string
	for _, p := range platforms {
		ps = append(ps, p.String())
	}
	return strings.Join(ps, ",")
}

// containerKey names a container across ko's rewrite.
func containerKey(d *validate.Document, ctr corev1.Container) string {
	return d.Kind + "/" + d.Name + "/" + ctr.Name
}

// filteredCopy writes the applied documents of set, less those running a package of pending,
// to one file and returns its path.
func filteredCopy(t *testing.T, set *validate.Set, pending []string) string {
	t.Helper()
	var buf bytes.Buffer
	for _, d := range set.Applied {
		skip := false
		for _, w := range (&validate.Set{Applied: []*validate.Document{d}}).Workloads() {
			for _, ctr := range w.Pod.Containers {
				if fn, ok := validate.FunctionOf(ctr.Image); ok && slices.Contains(pending, fn.Dir()) {
					skip = true
				}
			}
		}
		if skip {
			continue
		}
		buf.WriteString("---\n")
		buf.Write(d.Raw)
		buf.WriteString("\n")
	}
	file := filepath.Join(t.TempDir(), "manifests.yaml")
	require.NoError(t, os.WriteFile(file, buf.Bytes(), 0o644))
	return file
}
