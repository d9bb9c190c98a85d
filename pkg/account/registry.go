package account

import (
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// ErrUnknownScheme means no provider is registered for an account URL's scheme on its
// channel.
var ErrUnknownScheme = errors.New("no provider for the account URL's scheme")

// Factory builds the provider of one account from its URL, the rate parameter removed. It
// must not quote the URL in its errors: URLs carry credentials.
type Factory func(name string, u *url.URL) (channel.Provider, error)

// Registry maps each channel's account URL schemes to the factories that build their
// providers. Register everything before building; a Registry is not safe for concurrent
// registration.
type Registry struct {
	factories map[registryKey]Factory
}

type registryKey struct {
	channel notification.Channel
	scheme  string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[registryKey]Factory{}}
}

// Register makes f build the accounts of ch whose URL has scheme, replacing any factory
// registered for them before.
func (r *Registry) Register(ch notification.Channel, scheme string, f Factory) {
	r.factories[registryKey{ch, scheme}] = f
}

// Schemes lists the schemes registered for ch, sorted.
func (r *Registry) Schemes(ch notification.Channel) []string {
	var out []string
	for k := range r.factories {
		if k.channel == ch {
			out = append(out, k.scheme)
		}
	}
	slices.Sort(out)
	return out
}

// Build builds the provider of account name of ch from its URL u.
func (r *Registry) Build(ch notification.Channel, name string, u *url.URL) (channel.Provider, error) {
	f, ok := r.factories[registryKey{ch, u.Scheme}]
	if !ok {
		// The scheme is not secret; the rest of the URL may be.
		return nil, fmt.Errorf("build %s account %s: %w: %q (registered: %q)", ch, name, ErrUnknownScheme, u.Scheme, r.Schemes(ch))
	}
	p, err := f(name, u)
	if err != nil {
		return nil, fmt.Errorf("build %s account %s: %w", ch, name, err)
	}
	return p, nil
}
