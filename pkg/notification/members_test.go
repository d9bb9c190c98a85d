package notification

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// membersSeeds are documents whose splitting differs from a naive one: escapes in names and
// values, nesting, brackets inside strings, repeated names, whitespace everywhere.
var membersSeeds = []string{
	`{"channel":"sms","to":"+15551234567","body":"b"}`,
	" \t{ \"a\" :\n1 , \"b\" : [ 1 , { \"c\" : \"}]\\\"\" } ] ,\"d\":{}} \r\n",
	`{"\u0063hannel":"x","to\"":"y","a":"\\","a":"second"}`,
	`{"n":-1.5e+3,"t":true,"f":false,"z":null,"s":"\ud83d\ude00"}`,
	`{}`, `[]`, `null`, `"x"`, `{"a":1}x`, `{"a":}`, "{\"\xff\":1}", ``, ` `,
}

// TestObjectMembers: objectMembers splits an object as encoding/json does.
func TestObjectMembers(t *testing.T) {
	t.Parallel()
	for _, doc := range membersSeeds {
		t.Run(doc, func(t *testing.T) { checkMembers(t, []byte(doc)) })
	}
}

// FuzzObjectMembers: for any input, objectMembers agrees with json.Unmarshal into a
// map[string]json.RawMessage.
func FuzzObjectMembers(f *testing.F) {
	for _, doc := range membersSeeds {
		f.Add([]byte(doc))
	}
	f.Fuzz(checkMembers)
}

func checkMembers(t *testing.T, doc []byte) {
	var want map[string]json.RawMessage
	wantOK := json.Unmarshal(doc, &want) == nil && want != nil
	got, ok := objectMembers(doc)
	if ok != wantOK {
		t.Fatalf("objectMembers(%q) ok = %v, json.Unmarshal ok = %v", doc, ok, wantOK)
	}
	if !ok {
		return
	}
	// Byte for byte: both keep a value as written, without the whitespace around it.
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b json.RawMessage) bool { return bytes.Equal(a, b) })); diff != "" {
		t.Errorf("objectMembers(%q) (-want +got):\n%s", doc, diff)
	}
}
