package validate

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/kelseyhightower/envconfig"

	"github.com/pulse-knative/pulse/pkg/config"
)

// Var is one environment variable a pkg/config struct reads, as envconfig sees it.
type Var struct {
	// Name is the variable's name (the envconfig key).
	Name string
	// Default is the value used when the variable is unset; empty when there is none.
	Default string
	// Required is true when envconfig refuses to load without the variable.
	Required bool
}

// Needed reports whether a manifest must set the variable: required and without a default.
func (v Var) Needed() bool { return v.Required && v.Default == "" }

// ConfigStruct returns a pointer to a new zero config.<name>, found among config.All.
func ConfigStruct(name string) (any, bool) {
	for _, c := range config.All {
		if t := reflect.TypeOf(c).Elem(); t.Name() == name {
			return reflect.New(t).Interface(), true
		}
	}
	return nil, false
}

// usage lists one variable a line for envconfig.Usagef: key, required, default, tab separated.
const usage = "{{range .}}{{usage_key .}}\t{{usage_required .}}\t{{usage_default .}}\n{{end}}"

// ConfigVars returns the variables of config.<name> in field order, read by envconfig itself,
// so the list is exactly what the functions load.
func ConfigVars(name string) ([]Var, error) {
	spec, ok := ConfigStruct(name)
	if !ok {
		return nil, fmt.Errorf("list variables of config.%s: not in config.All", name)
	}
	var b strings.Builder
	if err := envconfig.Usagef("", spec, &b, usage); err != nil {
		return nil, fmt.Errorf("list variables of config.%s: %w", name, err)
	}
	var vars []Var
	for _, line := range strings.Split(b.String(), "\n") {
		if f := strings.SplitN(line, "\t", 3); len(f) == 3 {
			required, _ := strconv.ParseBool(f[1])
			vars = append(vars, Var{Name: f[0], Required: required, Default: f[2]})
		}
	}
	return vars, nil
}

// AllVars returns the variables of every struct the Functions name, by struct name. A
// Function naming a struct config.All lacks is an error.
func AllVars() (map[string][]Var, error) {
	out := map[string][]Var{}
	for _, f := range Functions {
		if out[f.Config] != nil {
			continue
		}
		vars, err := ConfigVars(f.Config)
		if err != nil {
			return nil, err
		}
		out[f.Config] = vars
	}
	return out, nil
}
