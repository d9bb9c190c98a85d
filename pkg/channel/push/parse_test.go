package push

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		raw     string
		want    Config
		wantErr string
	}{
		"key file only": {
			raw:  "fcm://?credentials_file=%2Fvar%2Frun%2Fsecrets%2Fpulse%2Ffcm%2Fkey.json",
			want: Config{CredentialsFile: "/var/run/secrets/pulse/fcm/key.json"},
		},
		"every parameter": {
			raw: "fcm://?credentials_file=/k.json&project=my-project&api_url=http%3A%2F%2F127.0.0.1%3A8092&token_url=http%3A%2F%2F127.0.0.1%3A8092%2Ftoken",
			want: Config{CredentialsFile: "/k.json", Project: "my-project", APIURL: "http://127.0.0.1:8092",
				TokenURL: "http://127.0.0.1:8092/token"},
		},
		"wrong scheme":         {raw: "https://?credentials_file=/k.json", wantErr: "the scheme must be fcm"},
		"not a URL":            {raw: "fcm://%zzSECRET", wantErr: "not a valid URL"},
		"credentials in url":   {raw: "fcm://user:SECRET@?credentials_file=/k.json", wantErr: "never from the url"},
		"a host":               {raw: "fcm://fcm.googleapis.com?credentials_file=/k.json", wantErr: "want fcm://?credentials_file="},
		"no key file":          {raw: "fcm://?project=p", wantErr: "credentials_file is required"},
		"unknown parameter":    {raw: "fcm://?credentials_file=/k.json&private_key=SECRET", wantErr: `unknown parameter "private_key"`},
		"repeated parameter":   {raw: "fcm://?credentials_file=/k.json&project=a&project=b", wantErr: "parameter project is given 2 times"},
		"bad project":          {raw: "fcm://?credentials_file=/k.json&project=a%2Fb", wantErr: "project must be a Firebase project ID"},
		"api_url not http":     {raw: "fcm://?credentials_file=/k.json&api_url=SECRET", wantErr: "api_url must be"},
		"token_url with creds": {raw: "fcm://?credentials_file=/k.json&token_url=http%3A%2F%2Fu%3ASECRET%40h", wantErr: "token_url must be"},
		"bad query":            {raw: "fcm://?credentials_file=%zzSECRET", wantErr: "the query is not valid"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseURL(tt.raw)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "SECRET")
				return
			}
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tt.want, got), "(-want +got)")
		})
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	t.Parallel()

	const secretKey = "-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n"
	tests := map[string]struct {
		file    string
		project string
		wantErr string
	}{
		"not JSON":          {file: secretKey, wantErr: "the credentials file is not a service-account JSON key"},
		"not a service key": {file: `{"type":"authorized_user","private_key":"` + strings.ReplaceAll(secretKey, "\n", `\n`) + `"}`, wantErr: "not a service-account JSON key"},
		"no email":          {file: `{"type":"service_account","project_id":"p","private_key":"` + strings.ReplaceAll(secretKey, "\n", `\n`) + `"}`, wantErr: "lacks client_email or private_key"},
		"no project": {
			file:    `{"type":"service_account","client_email":"a@b","private_key":"` + strings.ReplaceAll(secretKey, "\n", `\n`) + `"}`,
			wantErr: "no project: set project, or use a key with a project_id",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "key.json")
			require.NoError(t, os.WriteFile(path, []byte(tt.file), 0o600))
			_, err := New(Config{CredentialsFile: path, Project: tt.project})
			require.ErrorContains(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), "SECRET")
		})
	}
	_, err := New(Config{CredentialsFile: filepath.Join(t.TempDir(), "missing.json")})
	require.ErrorContains(t, err, "read credentials file")
}

func TestParseError(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		body   string
		want   apiError
		wantOK bool
	}{
		"FCM's shape": {
			body: `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[` +
				`{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`,
			want:   apiError{Status: "NOT_FOUND", ErrorCode: "UNREGISTERED", Message: "Requested entity was not found."},
			wantOK: true,
		},
		"FcmError after another detail": {
			body: `{"error":{"status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","errorCode":"NOPE"},` +
				`{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"}]}}`,
			want:   apiError{Status: "INVALID_ARGUMENT", ErrorCode: "INVALID_ARGUMENT"},
			wantOK: true,
		},
		"status only":          {body: `{"error":{"code":503,"status":"UNAVAILABLE"}}`, want: apiError{Status: "UNAVAILABLE"}, wantOK: true},
		"codes not enum names": {body: `{"error":{"status":"x y","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"<b>"}]}}`, wantOK: true},
		"wrong types ignored":  {body: `{"error":{"status":1,"message":[],"details":{}}}`, wantOK: true},
		"error not an object":  {body: `{"error":"boom"}`},
		"no error":             {body: `{}`},
		"HTML":                 {body: `<html></html>`},
		"empty":                {body: ``},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseError([]byte(tt.body))
			require.Equal(t, tt.wantOK, ok)
			require.Empty(t, cmp.Diff(tt.want, got, cmp.AllowUnexported(apiError{})), "(-want +got)")
		})
	}
}

// FuzzParseError: any answer body parses to codes that are enum names or empty and a message
// that fits on one line of an error. It never panics.
func FuzzParseError(f *testing.F) {
	for _, seed := range []string{
		`{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`,
		`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"}]}}`,
		`{"error":{"details":[null,1,{}]}}`, `{"error":null}`, `[]`, `{`, "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, ok := parseError(body)
		if !ok {
			require.Zero(t, e)
			return
		}
		for _, c := range []string{e.Status, e.ErrorCode} {
			require.Equal(t, c, codeName(c))
		}
		require.LessOrEqual(t, len([]rune(e.Message)), maxErrorMessage+1)
		require.False(t, strings.ContainsFunc(e.Message, unicode.IsControl))
	})
}
