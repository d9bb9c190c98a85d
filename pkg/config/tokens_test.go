package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/config"
)

func TestTokensDecode(t *testing.T) {
	t.Parallel()
	var tokens config.Tokens
	require.NoError(t, tokens.Decode("shop=https://shop.example.com/, urn:billing;\nops=*"))
	require.True(t, tokens.Allows("shop", "https://shop.example.com/orders"))
	require.True(t, tokens.Allows("shop", "urn:billing:invoices"))
	require.False(t, tokens.Allows("shop", "https://other.example.com/"))
	require.True(t, tokens.Allows("ops", "anything"))
	require.False(t, tokens.Allows("unknown", "anything"))

	err := tokens.Decode("s3cret-token")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret", "a malformed entry is not echoed: it holds a secret")
}

// TestTokensAllowsAtABoundary: a prefix matches itself and what continues it after '/', ':'
// or '#', never a longer name that merely starts with it.
func TestTokensAllowsAtABoundary(t *testing.T) {
	t.Parallel()
	tokens := config.Tokens{
		"billing": {"urn:billing"},
		"shop":    {"https://shop.example.com"},
		"slash":   {"https://hooks.example.com/tenant-a/"},
		"colon":   {"urn:ops:"},
		"empty":   {""},
	}
	for name, tc := range map[string]struct {
		token, source string
		want          bool
	}{
		"prefix itself":                  {"billing", "urn:billing", true},
		"after a colon":                  {"billing", "urn:billing:invoices", true},
		"after a slash":                  {"billing", "urn:billing/invoices", true},
		"after a hash":                   {"billing", "urn:billing#1", true},
		"longer name":                    {"billing", "urn:billingother", false},
		"longer name with a colon later": {"billing", "urn:billingother:x", false},
		"shorter":                        {"billing", "urn:bill", false},
		"host itself":                    {"shop", "https://shop.example.com", true},
		"host path":                      {"shop", "https://shop.example.com/orders", true},
		"host port":                      {"shop", "https://shop.example.com:8443/orders", true},
		"host suffix":                    {"shop", "https://shop.example.com.evil.example/", false},
		"host userinfo trick":            {"shop", "https://shop.example.com@evil.example/", false},
		"prefix ending in slash":         {"slash", "https://hooks.example.com/tenant-a/orders", true},
		"prefix ending in slash, other":  {"slash", "https://hooks.example.com/tenant-ab", false},
		"prefix ending in colon":         {"colon", "urn:ops:deploys", true},
		"prefix ending in colon, bare":   {"colon", "urn:ops", false},
		"empty prefix matches nothing":   {"empty", "urn:anything", false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tokens.Allows(tc.token, tc.source))
		})
	}
}

// FuzzTokensDecode: any value either fails without echoing it or gives tokens that allow only
// what their prefixes say. It never panics.
func FuzzTokensDecode(f *testing.F) {
	for _, seed := range []string{"a=b", "a=*;b=c,d", "=x", "a=", ";;\n", "a=b=c", "tok=https://x/,"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		var tokens config.Tokens
		if err := tokens.Decode(value); err != nil {
			return
		}
		for token, prefixes := range tokens {
			require.NotEmpty(t, token)
			require.NotEmpty(t, prefixes)
			for _, p := range prefixes {
				require.True(t, tokens.Allows(token, p+"/x"), "token %q, prefix %q", token, p)
			}
		}
	})
}
