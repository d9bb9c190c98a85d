package push

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/channel/internal/channeltest"
)

func TestParseURL(t *testing.T) {
	t.Parallel()

	channeltest.CheckParseURL(t, ParseURL, "SECRET", map[string]channeltest.URLCase[Config]{
		"key file only": {
			Raw:  "fcm://?credentials_file=%2Fvar%2Frun%2Fsecrets%2Fpulse%2Ffcm%2Fkey.json",
			Want: Config{CredentialsFile: "/var/run/secrets/pulse/fcm/key.json"},
		},
		"every parameter": {
			Raw: "fcm://?credentials_file=/k.json&project=my-project&api_url=http%3A%2F%2F127.0.0.1%3A8092&token_url=http%3A%2F%2F127.0.0.1%3A8092%2Ftoken",
			Want: Config{CredentialsFile: "/k.json", Project: "my-project", APIURL: "http://127.0.0.1:8092",
				TokenURL: "http://127.0.0.1:8092/token"},
		},
		"wrong scheme":         {Raw: "https://?credentials_file=/k.json", WantErr: "the scheme must be fcm"},
		"not a URL":            {Raw: "fcm://%zzSECRET", WantErr: "not a valid URL"},
		"credentials in url":   {Raw: "fcm://user:SECRET@?credentials_file=/k.json", WantErr: "never from the url"},
		"a host":               {Raw: "fcm://fcm.googleapis.com?credentials_file=/k.json", WantErr: "want fcm://?credentials_file="},
		"no key file":          {Raw: "fcm://?project=p", WantErr: "credentials_file is required"},
		"unknown parameter":    {Raw: "fcm://?credentials_file=/k.json&private_key=SECRET", WantErr: `unknown parameter "private_key"`},
		"repeated parameter":   {Raw: "fcm://?credentials_file=/k.json&project=a&project=b", WantErr: "parameter project is given 2 times"},
		"bad project":          {Raw: "fcm://?credentials_file=/k.json&project=a%2Fb", WantErr: "project must be a Firebase project ID"},
		"api_url not http":     {Raw: "fcm://?credentials_file=/k.json&api_url=SECRET", WantErr: "api_url must be"},
		"token_url with creds": {Raw: "fcm://?credentials_file=/k.json&token_url=http%3A%2F%2Fu%3ASECRET%40h", WantErr: "token_url must be"},
		"bad query":            {Raw: "fcm://?credentials_file=%zzSECRET", WantErr: "the query is not valid"},
	})
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

	channeltest.CheckErrorParser(t, parseError, map[string]channeltest.ErrorBody[apiError]{
		"FCM's shape": {
			Body: `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[` +
				`{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`,
			Want:   apiError{Status: "NOT_FOUND", ErrorCode: "UNREGISTERED", Message: "Requested entity was not found."},
			WantOK: true,
		},
		"FcmError after another detail": {
			Body: `{"error":{"status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","errorCode":"NOPE"},` +
				`{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"}]}}`,
			Want:   apiError{Status: "INVALID_ARGUMENT", ErrorCode: "INVALID_ARGUMENT"},
			WantOK: true,
		},
		"status only":          {Body: `{"error":{"code":503,"status":"UNAVAILABLE"}}`, Want: apiError{Status: "UNAVAILABLE"}, WantOK: true},
		"codes not enum names": {Body: `{"error":{"status":"x y","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"<b>"}]}}`, WantOK: true},
		"wrong types ignored":  {Body: `{"error":{"status":1,"message":[],"details":{}}}`, WantOK: true},
		"error not an object":  {Body: `{"error":"boom"}`},
		"no error":             {Body: `{}`},
		"HTML":                 {Body: `<html></html>`},
		"empty":                {Body: ``},
	})
}

// FuzzParseError: any answer body parses to codes that are enum names or empty and a message
// that fits on one line of an error. It never panics.
func FuzzParseError(f *testing.F) {
	seeds := []string{
		`{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`,
		`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"}]}}`,
		`{"error":{"details":[null,1,{}]}}`, `{"error":null}`, `[]`, `{`, "",
	}
	channeltest.FuzzErrorParser(f, parseError, seeds, func(t *testing.T, e apiError) {
		for _, c := range []string{e.Status, e.ErrorCode} {
			require.Equal(t, c, codeName(c))
		}
		channeltest.RequireOneLine(t, e.Message, maxErrorMessage)
	})
}
