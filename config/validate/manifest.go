package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

// TemplateSuffix ends the names of manifests kept beside the applied ones but never applied:
// ko and kubectl pick up only .yaml and .json files.
const TemplateSuffix = ".yaml.example"

// Document is one YAML document of a manifest file.
type Document struct {
	// File is the path of the file, relative to the root the set was loaded from.
	File string
	// Index is the document's position in its file, from 0.
	Index int
	// TypeMeta and ObjectMeta are read from every document, whatever its kind.
	metav1.TypeMeta
	metav1.ObjectMeta
	// Object is the document decoded strictly into its type (one of the types in kinds), or
	// nil for a kind this package does not know.
	Object any
	// Fields is the document as a generic map, for kinds without a Go type here.
	Fields map[string]any
	// Raw is the document's YAML as written.
	Raw []byte
}

// String names the document for problem reports: file, position and object.
func (d *Document) String() string {
	return fmt.Sprintf("%s#%d %s %s/%s", d.File, d.Index+1, d.Kind, d.Namespace, d.Name)
}

type gvk struct{ apiVersion, kind string }

// kinds are the types every known document is decoded into. Other kinds (a PrometheusRule, the
// RedisStreamSource alternative) are kept as generic maps.
var kinds = map[gvk]func() any{
	{"v1", "Namespace"}:                           func() any { return new(corev1.Namespace) },
	{"v1", "ConfigMap"}:                           func() any { return new(corev1.ConfigMap) },
	{"v1", "Secret"}:                              func() any { return new(corev1.Secret) },
	{"v1", "Service"}:                             func() any { return new(corev1.Service) },
	{"apps/v1", "StatefulSet"}:                    func() any { return new(appsv1.StatefulSet) },
	{"apps/v1", "Deployment"}:                     func() any { return new(appsv1.Deployment) },
	{"serving.knative.dev/v1", "Service"}:         func() any { return new(servingv1.Service) },
	{"sources.knative.dev/v1", "ContainerSource"}: func() any { return new(sourcesv1.ContainerSource) },
	{"sources.knative.dev/v1", "PingSource"}:      func() any { return new(sourcesv1.PingSource) },
}

// Set is the manifests of a directory tree.
type Set struct {
	// Applied are the documents `ko apply` sends to the cluster: every .yaml and .json file
	// (recursively for Load, as -Rf; only the top level for LoadTop, as -f), in ko's walk order.
	Applied []*Document
	// Templates are the documents of *.yaml.example files: Secret templates and alternatives
	// that are documented but never applied.
	Templates []*Document
}

// Load reads the manifests under the directories dirs of root as `ko apply -R -f DIR` would
// for each, plus the templates beside them. File names in the documents are relative to root.
func Load(root string, dirs ...string) (*Set, error) {
	return load(root, true, dirs)
}

// LoadTop reads the manifests of the directories dirs of root as `ko apply -f DIR` (without -R)
// would: the files directly in each, none of its subdirectories.
func LoadTop(root string, dirs ...string) (*Set, error) {
	return load(root, false, dirs)
}

func load(root string, recursive bool, dirs []string) (*Set, error) {
	set := new(Set)
	var bad []error
	for _, dir := range dirs {
		top := filepath.Join(root, dir)
		err := filepath.Walk(top, func(path string, fi fs.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if fi.IsDir() {
				if path != top && !recursive {
					return filepath.SkipDir
				}
				return nil
			}
			// ko's own rule (and kubectl's, which also takes .yml).
			applied := filepath.Ext(path) == ".yaml" || filepath.Ext(path) == ".json"
			template := strings.HasSuffix(path, TemplateSuffix)
			if !applied && !template {
				return nil
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			docs, err := Decode(filepath.ToSlash(rel), b)
			if err != nil {
				// Go on: report every bad file at once.
				bad = append(bad, err)
				return nil
			}
			if applied {
				set.Applied = append(set.Applied, docs...)
			} else {
				set.Templates = append(set.Templates, docs...)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("load manifests under %s: %w", filepath.Join(root, dir), err)
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("load manifests: %w", errors.Join(bad...))
	}
	return set, nil
}

// Decode splits a manifest file into its documents and decodes each one strictly: a field its
// type does not have, or a field given twice, is an error. Empty documents (comments only) are
// skipped; any other document must be a Kubernetes object with apiVersion, kind and a name.
func Decode(file string, data []byte) ([]*Document, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []*Document
	for i := 0; ; i++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i+1, err)
		}
		doc, err := decodeDocument(file, i, raw)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i+1, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

func decodeDocument(file string, index int, raw []byte) (*Document, error) {
	var fields map[string]any
	if err := yaml.UnmarshalStrict(raw, &fields); err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		return nil, nil
	}
	doc := &Document{File: file, Index: index, Fields: fields, Raw: raw}
	var head struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal(raw, &head); err != nil {
		return nil, err
	}
	doc.TypeMeta, doc.ObjectMeta = head.TypeMeta, head.ObjectMeta
	if doc.APIVersion == "" || doc.Kind == "" || doc.Name == "" {
		return nil, errors.New("not a Kubernetes object (no apiVersion, kind or metadata.name): " +
			"`ko apply -R` would send it to the cluster all the same")
	}
	newObject, ok := kinds[gvk{doc.APIVersion, doc.Kind}]
	if !ok {
		return doc, nil
	}
	doc.Object = newObject()
	if err := yaml.UnmarshalStrict(raw, doc.Object); err != nil {
		return nil, fmt.Errorf("%s %s: %w", doc.Kind, doc.Name, err)
	}
	return doc, nil
}

// All returns the applied documents followed by the templates.
func (s *Set) All() []*Document {
	return append(append([]*Document(nil), s.Applied...), s.Templates...)
}

// Find returns the applied document of the given kind, namespace and name, or nil.
func (s *Set) Find(apiVersion, kind, namespace, name string) *Document {
	for _, d := range s.Applied {
		if d.APIVersion == apiVersion && d.Kind == kind && d.Namespace == namespace && d.Name == name {
			return d
		}
	}
	return nil
}

// findSecret returns the Secret of that name, applied or a template, or nil.
func (s *Set) findSecret(namespace, name string) *corev1.Secret {
	for _, d := range s.All() {
		if sec, ok := d.Object.(*corev1.Secret); ok && d.Namespace == namespace && d.Name == name {
			return sec
		}
	}
	return nil
}

// findConfigMap returns the applied ConfigMap of that name, or nil. A ConfigMap only in a
// template would leave the pods without it.
func (s *Set) findConfigMap(namespace, name string) *corev1.ConfigMap {
	if d := s.Find("v1", "ConfigMap", namespace, name); d != nil {
		return d.Object.(*corev1.ConfigMap)
	}
	return nil
}

// Services returns the applied Knative Services by name.
func (s *Set) Services() map[string]*servingv1.Service {
	out := map[string]*servingv1.Service{}
	for _, ksvc := range applied[*servingv1.Service](s) {
		out[ksvc.Name] = ksvc
	}
	return out
}

// applied yields the applied documents whose object is a T, with the object, in file order.
func applied[T any](s *Set) iter.Seq2[*Document, T] {
	return func(yield func(*Document, T) bool) {
		for _, d := range s.Applied {
			if o, ok := d.Object.(T); ok && !yield(d, o) {
				return
			}
		}
	}
}
