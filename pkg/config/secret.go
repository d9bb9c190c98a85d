package config

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/kelseyhightower/envconfig"
)

// secretSafeError is an error from decoding a secret variable whose message was written not
// to quote the value; redact keeps it.
type secretSafeError string

func (e secretSafeError) Error() string { return string(e) }

// redact returns err, envconfig's error from loading cfg, without the value of a secret
// variable in it. envconfig's parse errors quote the whole value they could not parse, and
// parsers' own messages (strconv, time, url) quote it again in their details.
func redact(cfg any, err error) error {
	var pe *envconfig.ParseError
	if !errors.As(err, &pe) || !SecretNames(cfg)[pe.KeyName] {
		return err
	}
	var safe secretSafeError
	if errors.As(pe.Err, &safe) {
		return fmt.Errorf("%s: %w (the value is secret and not shown)", pe.KeyName, safe)
	}
	return fmt.Errorf("%s: not a valid %s (the value is secret and not shown)", pe.KeyName, pe.TypeName)
}

// SecretNames returns the names of the variables of cfg (a pointer to one of this package's
// structs) that hold secrets: tokens, keys and URLs that may carry passwords. No error and
// no log line may show their values.
func SecretNames(cfg any) map[string]bool {
	names := map[string]bool{}
	secretNames(reflect.TypeOf(cfg).Elem(), names)
	return names
}

func secretNames(t reflect.Type, into map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			secretNames(f.Type, into)
			continue
		}
		if name := f.Tag.Get("envconfig"); name != "" && f.Tag.Get("secret") == "true" {
			into[name] = true
		}
	}
}
