package capture_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/capture"
)

var keys = sync.OnceValues(func() ([2]*capture.ServiceAccountKey, error) {
	a, err := capture.NewServiceAccountKey("p", "http://127.0.0.1:1/token")
	if err != nil {
		return [2]*capture.ServiceAccountKey{}, err
	}
	b, err := capture.NewServiceAccountKey("p", "http://127.0.0.1:1/token")
	return [2]*capture.ServiceAccountKey{a, b}, err
})

// sign makes a JWT the way a client would, with the private key in k's file.
func sign(t *testing.T, k *capture.ServiceAccountKey, header, claims string) string {
	t.Helper()
	var file struct {
		PrivateKey string `json:"private_key"`
	}
	require.NoError(t, json.Unmarshal(k.JSON, &file))
	block, _ := pem.Decode([]byte(file.PrivateKey))
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, sum[:])
	require.NoError(t, err)
	return signed + "." + enc.EncodeToString(sig)
}

func TestVerifyJWTAssertion(t *testing.T) {
	t.Parallel()
	k, err := keys()
	require.NoError(t, err)
	const header = `{"alg":"RS256","typ":"JWT"}`
	const claims = `{"iss":"a@p.iam.gserviceaccount.com","scope":"s","aud":"http://t/token","exp":2000,"iat":1000}`
	good := sign(t, k[0], header, claims)
	parts := strings.Split(good, ".")

	tests := map[string]struct {
		assertion string
		wantErr   string
	}{
		"signed by the key": {assertion: good},
		"signed by another": {assertion: sign(t, k[1], header, claims), wantErr: "signature does not verify"},
		"claims changed":    {assertion: parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(claims, "2000", "9999", 1))) + "." + parts[2], wantErr: "signature does not verify"},
		"alg none":          {assertion: sign(t, k[0], `{"alg":"none"}`, claims), wantErr: "does not name RS256"},
		"two parts":         {assertion: parts[0] + "." + parts[1], wantErr: "not a JWS compact serialization"},
		"signature not b64": {assertion: parts[0] + "." + parts[1] + ".!!", wantErr: "not base64url"},
		"claims not JSON":   {assertion: sign(t, k[0], header, "nope"), wantErr: "claims are not JSON"},
		"empty":             {assertion: "", wantErr: "not a JWS compact serialization"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := capture.VerifyJWTAssertion(tt.assertion, k[0].Public)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, capture.JWTClaims{Iss: "a@p.iam.gserviceaccount.com", Scope: "s", Aud: "http://t/token", Exp: 2000, Iat: 1000}, got)
		})
	}
}

// FuzzVerifyJWTAssertion: no assertion that was not signed by the key verifies, and none
// panics.
func FuzzVerifyJWTAssertion(f *testing.F) {
	for _, seed := range []string{"a.b.c", "..", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA", "", "a.b.c.d"} {
		f.Add(seed)
	}
	k, err := keys()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, assertion string) {
		_, err := capture.VerifyJWTAssertion(assertion, k[0].Public)
		require.Error(t, err)
	})
}
