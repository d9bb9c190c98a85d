package fielderr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/fielderr"
)

func TestError(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		err  *fielderr.Error
		want string
	}{
		"missing": {
			err:  fielderr.Missing("to"),
			want: "missing field(s): to",
		},
		"via field": {
			err:  fielderr.Missing("to").ViaField("data"),
			want: "missing field(s): data.to",
		},
		"current field": {
			err:  fielderr.New("must be a JSON object", fielderr.Current).ViaField("data"),
			want: "must be a JSON object: data",
		},
		"index joins the field before it": {
			err:  fielderr.Missing("channel").ViaField("data").ViaIndex(3),
			want: "missing field(s): [3].data.channel",
		},
		"field index": {
			err:  fielderr.New("must be a string", fielderr.Current).ViaFieldIndex("tags", 2).ViaField("data"),
			want: "must be a string: data.tags[2]",
		},
		"key": {
			err:  fielderr.New("too long", fielderr.Current).ViaFieldKey("metadata", "tier"),
			want: "too long: metadata[tier]",
		},
		"details on their own line": {
			err:  fielderr.InvalidValue("urgent", "priority", "want high or low"),
			want: "invalid value: urgent: priority\nwant high or low",
		},
		"same message merges paths, sorted": {
			err:  fielderr.Missing("to").Also(fielderr.Missing("body"), fielderr.Missing("to")),
			want: "missing field(s): body, to",
		},
		"messages sorted": {
			err: fielderr.New("must be a string", "subject").
				Also(fielderr.OutOfBounds(0, 1, 25, "max_attempts")).
				Also(fielderr.Disallowed("colour")),
			want: "expected 1 <= 0 <= 25: max_attempts\nmust be a string: subject\nmust not set the field(s): colour",
		},
		"collected problems keep their prefix": {
			err: (*fielderr.Error)(nil).
				Also(fielderr.Missing("to").ViaIndex(0)).
				Also(fielderr.Missing("to").ViaIndex(1)).
				ViaField("events"),
			want: "missing field(s): events[0].to, events[1].to",
		},
		"key name": {
			err:  fielderr.InvalidKeyName("", "metadata", "keys must be 1 to 64 bytes"),
			want: "invalid key name \"\": metadata\nkeys must be 1 to 64 bytes",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, tt.err.Error()); diff != "" {
				t.Errorf("Error() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAlsoNothingIsNil(t *testing.T) {
	t.Parallel()
	var errs *fielderr.Error
	errs = errs.Also(nil, &fielderr.Error{})
	require.Nil(t, errs)
	require.Nil(t, errs.ViaField("data"))
	require.Empty(t, errs.WrappedErrors())
}

// TestAlsoDoesNotChangeItsReceiver collects two different problems onto one error; neither
// collection may see the other's.
func TestAlsoDoesNotChangeItsReceiver(t *testing.T) {
	t.Parallel()
	base := fielderr.Missing("to").Also(fielderr.Missing("body"))
	a := base.Also(fielderr.Missing("subject"))
	b := base.Also(fielderr.New("must be a string", "html"))
	require.Equal(t, "missing field(s): body, to", base.Error())
	require.Equal(t, "missing field(s): body, subject, to", a.Error())
	require.Equal(t, "missing field(s): body, to\nmust be a string: html", b.Error())
}

func TestWrappedErrors(t *testing.T) {
	t.Parallel()
	err := fielderr.Missing("to").ViaIndex(1).
		Also(fielderr.InvalidValue("x", "priority", "want high or low").ViaIndex(0)).
		Also(fielderr.Missing("to").ViaIndex(0))
	want := []*fielderr.Error{
		{Message: "invalid value: x", Paths: []string{"[0].priority"}, Details: "want high or low"},
		{Message: "missing field(s)", Paths: []string{"[0].to", "[1].to"}},
	}
	if diff := cmp.Diff(want, err.WrappedErrors(), cmp.AllowUnexported(fielderr.Error{})); diff != "" {
		t.Errorf("WrappedErrors() (-want +got):\n%s", diff)
	}
}

func TestErrorsAs(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("parse: %w", fielderr.Missing("data.to"))
	var fe *fielderr.Error
	require.True(t, errors.As(err, &fe))
	require.Equal(t, []string{"data.to"}, fe.Paths)
}
