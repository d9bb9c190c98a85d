package notification_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// jsonbCases are documents at the edges of what PostgreSQL's jsonb stores, with the paths the
// validator names for them (none when jsonb stores the document).
var jsonbCases = map[string]struct {
	doc   string
	paths []string
}{
	"plain object":              {`{"order":7,"items":[1,"two",null,true,{"x":-0.5e3}]}`, nil},
	"escaped backslash u0000":   {`{"k":"\\u0000"}`, nil},
	"surrogate pair":            {`{"k":"\ud83d\ude00"}`, nil},
	"BMP escape":                {`{"k":"\u00e9\u20ac"}`, nil},
	"minus zero":                {`{"k":-0}`, nil},
	"minus zero fraction":       {`{"k":-0.0}`, nil},
	"zero with huge exponent":   {`{"k":0e1000000}`, nil},
	"zero at exponent limit":    {`{"k":0e1073741822}`, nil},
	"largest weight":            {`{"k":99999e131067}`, nil},
	"largest power of ten":      {`{"k":1e131071}`, nil},
	"smallest scale":            {`{"k":1e-16383}`, nil},
	"fraction at scale limit":   {`{"k":1.5e-16382}`, nil},
	"fraction moved up":         {`{"k":0.0001e131075}`, nil},
	"exponent with plus":        {`{"k":1E+2}`, nil},
	"nested 512":                {strings.Repeat(`[`, 511) + strings.Repeat(`]`, 511), nil},
	"nul escape":                {`{"k":"a\u0000b"}`, []string{"data.k"}},
	"nul escape in key":         {`{"a\u0000":1}`, []string{"data"}},
	"lone high surrogate":       {`{"k":"\ud800"}`, []string{"data.k"}},
	"lone low surrogate":        {`{"k":"\udc00"}`, []string{"data.k"}},
	"high then not low":         {`{"k":"\ud800\u0041"}`, []string{"data.k"}},
	"invalid UTF-8":             {"{\"k\":\"\xff\"}", []string{"data.k"}},
	"invalid UTF-8 deep":        {"{\"items\":[1,2,3,\"\xc3\"]}", []string{"data.items[3]"}},
	"odd key":                   {`{"a b":{"c":"\ud800"}}`, []string{"data[a b].c"}},
	"too large":                 {`{"k":1e1000000}`, []string{"data.k"}},
	"too small":                 {`{"k":1e-1000000}`, []string{"data.k"}},
	"one past largest":          {`{"k":1e131072}`, []string{"data.k"}},
	"one past smallest":         {`{"k":1e-16384}`, []string{"data.k"}},
	"trailing zero past scale":  {`{"k":1.50e-16382}`, []string{"data.k"}},
	"zero past scale":           {`{"k":0e-99999}`, []string{"data.k"}},
	"zero past exponent limit":  {`{"k":0e1073741823}`, []string{"data.k"}},
	"exponent overflowing int":  {`{"k":1e99999999999999999999999}`, []string{"data.k"}},
	"fraction moved past limit": {`{"k":0.0001e131076}`, []string{"data.k"}},
	"several":                   {`{"a":1e999999,"b":["\u0000"]}`, []string{"data.a", "data.b[0]"}},
	"nested 513":                {strings.Repeat(`[`, 513) + strings.Repeat(`]`, 513), []string{"data" + strings.Repeat("[0]", 512)}},
}

func TestValidateJSONB(t *testing.T) {
	t.Parallel()
	for name, tc := range jsonbCases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.True(t, json.Valid([]byte(tc.doc)), "cases are valid JSON")
			var got []string
			if errs := notification.ValidateJSONB([]byte(tc.doc), "data"); errs != nil {
				for _, e := range errs.WrappedErrors() {
					got = append(got, e.Paths...)
					require.NotContains(t, e.Error(), "\xff", "values are not echoed")
				}
			}
			if diff := cmp.Diff(tc.paths, got); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzValidateJSONB's oracle is PostgreSQL: a document the validator accepts, jsonb stores,
// and one jsonb stores, the validator accepts unless it nests deeper than MaxDataDepth.
func FuzzValidateJSONB(f *testing.F) {
	for _, tc := range jsonbCases {
		f.Add([]byte(tc.doc))
	}
	for _, seed := range []string{`1`, `"x"`, `[]`, `-12.5e-3`, `{"a":{"b":[0.000]}}`, `"\u0000"`, `"\\\u0000"`, `[:]`, `{1:2}`, `1e`, `"\u12`, `{"a"`} {
		f.Add([]byte(seed))
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pulsetest.DatabaseURL(f))
	require.NoError(f, err)
	f.Cleanup(func() { conn.Close(context.Background()) })
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !json.Valid(doc) {
			notification.ValidateJSONB(doc, "data") // returns, whatever it is given
			return                                  // ingest refuses it before validating data
		}
		errs := notification.ValidateJSONB(doc, "data")
		var stored bool
		pgErr := conn.QueryRow(ctx, `select $1::text::jsonb is not null`, string(doc)).Scan(&stored)
		if errs == nil {
			require.NoError(t, pgErr, "validator accepted %q", doc)
			return
		}
		if pgErr == nil && !strings.Contains(errs.Error(), "nests deeper") {
			t.Fatalf("validator refused %q, which jsonb stores: %v", doc, errs)
		}
	})
}
