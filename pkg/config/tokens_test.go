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
