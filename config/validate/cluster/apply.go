package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	validate "github.com/pulse-knative/pulse/config/validate"
)

// FieldManager owns every field Apply sets.
const FieldManager = "pulse-cluster-check"

// ReadManifests reads the documents of each path as `kubectl apply -f PATH` does: a file, or
// the .yaml, .yml and .json files directly in a directory in lexical order, with no
// subdirectories. ko:// images are replaced by FixImages.
func ReadManifests(paths ...string) ([]*validate.Document, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			switch filepath.Ext(e.Name()) {
			case ".yaml", ".yml", ".json":
				if !e.IsDir() {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
		}
	}
	var docs []*validate.Document
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		d, err := validate.Decode(f, FixImages(b))
		if err != nil {
			return nil, err
		}
		docs = append(docs, d...)
	}
	return docs, nil
}

// Applier sends documents to the API server with server-side apply.
type Applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	// warnings collects what the API server and its admission webhooks warn about, per request.
	warnings *warningRecorder
	// NewKindWait bounds how long a document of a kind the server does not know yet waits for
	// it: a CustomResourceDefinition applied just before takes a moment to be served.
	NewKindWait time.Duration
}

// NewApplier returns an Applier for the cluster of cfg.
func NewApplier(cfg *rest.Config) (*Applier, error) {
	rec := new(warningRecorder)
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = rec
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Applier{
		dyn:         dyn,
		mapper:      restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
		warnings:    rec,
		NewKindWait: time.Minute,
	}, nil
}

// Apply applies the documents in order. It goes on after a refused document, as kubectl does,
// and returns every refusal, each naming its document. With strict, a warning from the API
// server or a webhook (a PodSecurity warning, a deprecated field) is an error too.
func (a *Applier) Apply(ctx context.Context, docs []*validate.Document, strict bool) error {
	var errs []error
	for _, d := range docs {
		warnings, err := a.apply(ctx, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d, err))
		}
		if strict && len(warnings) > 0 {
			errs = append(errs, fmt.Errorf("%s: warned: %s", d, strings.Join(warnings, "; ")))
		}
	}
	return errors.Join(errs...)
}

func (a *Applier) apply(ctx context.Context, d *validate.Document) ([]string, error) {
	gv, err := schema.ParseGroupVersion(d.APIVersion)
	if err != nil {
		return nil, err
	}
	mapping, err := a.mapping(ctx, gv.WithKind(d.Kind))
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(d.Fields)
	if err != nil {
		return nil, err
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := d.Namespace
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		ri = a.dyn.Resource(mapping.Resource).Namespace(ns)
	}
	a.warnings.take()
	force := true
	_, err = ri.Patch(ctx, d.Name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
	return a.warnings.take(), err
}

// mapping finds the resource of a kind, waiting up to NewKindWait for a kind the server does
// not serve yet.
func (a *Applier) mapping(ctx context.Context, gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	deadline := time.Now().Add(a.NewKindWait)
	for {
		m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil || !meta.IsNoMatchError(err) || time.Now().After(deadline) {
			return m, err
		}
		a.mapper.Reset()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// warningRecorder keeps the warnings of the requests since the last take.
type warningRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, text)
}

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.seen
	w.seen = nil
	return out
}
