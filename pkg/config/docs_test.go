package config_test

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/config"
)

// envNames returns the envconfig names of every field of v's type, nested blocks included.
func envNames(t reflect.Type, into map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Anonymous {
			envNames(f.Type, into)
			continue
		}
		if name := f.Tag.Get("envconfig"); name != "" {
			into[name] = true
		}
	}
}

// TestConfigurationPageListsEverySetting keeps the variable table of docs/configuration.md and
// pkg/config in step.
func TestConfigurationPageListsEverySetting(t *testing.T) {
	t.Parallel()
	want := map[string]bool{}
	for _, v := range config.All {
		envNames(reflect.TypeOf(v).Elem(), want)
	}
	page, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	got := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\|").FindAllStringSubmatch(string(page), -1) {
		got[m[1]] = true
	}
	var missing, unknown []string
	for name := range want {
		if !got[name] {
			missing = append(missing, name)
		}
	}
	for name := range got {
		if !want[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(unknown)
	require.Empty(t, missing, "settings missing from the table in docs/configuration.md")
	require.Empty(t, unknown, "rows of the table in docs/configuration.md that pkg/config does not read")
}
