package fielderr

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Current is the path of the field being validated itself; a caller's ViaField names it.
const Current = ""

// Error is one or more problems with the fields of a request. Its methods never change it:
// Also and ViaField return new errors, so a nil *Error is a valid empty collection and
// `errs = errs.Also(...)` is how problems are gathered.
type Error struct {
	// Message says what is wrong, e.g. "missing field(s)".
	Message string
	// Paths are the fields the message is about.
	Paths []string
	// Details is optional further explanation, e.g. what value is wanted.
	Details string

	// more holds the problems collected by Also, each with no more of its own.
	more []*Error
}

// New is a problem with message at the fields paths.
func New(message string, paths ...string) *Error {
	return &Error{Message: message, Paths: paths}
}

// Missing is a problem of required fields that are absent.
func Missing(paths ...string) *Error {
	return New("missing field(s)", paths...)
}

// Disallowed is a problem of fields that must not be set.
func Disallowed(paths ...string) *Error {
	return New("must not set the field(s)", paths...)
}

// MissingOneOf is a problem of a group of fields of which exactly one must be set and none is.
func MissingOneOf(paths ...string) *Error {
	return New("expected exactly one, got neither", paths...)
}

// MultipleOneOf is a problem of a group of fields of which exactly one must be set and more are.
func MultipleOneOf(paths ...string) *Error {
	return New("expected exactly one, got both", paths...)
}

// InvalidValue is a problem of the field at path holding value; details say what is wanted.
func InvalidValue(value any, path string, details ...string) *Error {
	return &Error{Message: fmt.Sprint("invalid value: ", value), Paths: []string{path}, Details: strings.Join(details, ", ")}
}

// InvalidKeyName is a problem of a map at path holding the key key.
func InvalidKeyName(key, path string, details ...string) *Error {
	return &Error{Message: fmt.Sprintf("invalid key name %q", key), Paths: []string{path}, Details: strings.Join(details, ", ")}
}

// OutOfBounds is a problem of the field at path holding value outside [lower, upper].
func OutOfBounds(value, lower, upper any, path string) *Error {
	return New(fmt.Sprintf("expected %v <= %v <= %v", lower, value, upper), path)
}

// problems returns fe's problems: itself when it has a message, then those it collected.
func (fe *Error) problems() []*Error {
	if fe == nil {
		return nil
	}
	if fe.Message == "" {
		return fe.more
	}
	return append([]*Error{{Message: fe.Message, Paths: fe.Paths, Details: fe.Details}}, fe.more...)
}

// empty reports whether fe holds no problem.
func (fe *Error) empty() bool {
	return fe == nil || fe.Message == "" && len(fe.more) == 0
}

// Also returns fe with the problems of errs added; nil when there are none at all.
func (fe *Error) Also(errs ...*Error) *Error {
	n := 0
	for _, e := range errs {
		if !e.empty() {
			n++
		}
	}
	if n == 0 {
		if fe.empty() {
			return nil
		}
		return fe
	}
	out := &Error{}
	if fe != nil {
		out.Message, out.Paths, out.Details = fe.Message, fe.Paths, fe.Details
		out.more = slices.Clip(fe.more)
	}
	for _, e := range errs {
		out.more = append(out.more, e.problems()...)
	}
	return out
}

// ViaField returns fe with every path prefixed by the fields prefix, outermost first:
// Missing("to").ViaField("data") is about data.to.
func (fe *Error) ViaField(prefix ...string) *Error {
	if fe == nil {
		return nil
	}
	out := &Error{Message: fe.Message, Details: fe.Details, Paths: prefixed(prefix, fe.Paths)}
	if len(fe.more) > 0 {
		out.more = make([]*Error, len(fe.more))
		for i, e := range fe.more {
			out.more[i] = &Error{Message: e.Message, Details: e.Details, Paths: prefixed(prefix, e.Paths)}
		}
	}
	return out
}

// ViaIndex returns fe with every path prefixed by the index i of a list: [i].
func (fe *Error) ViaIndex(i int) *Error {
	return fe.ViaField(fmt.Sprintf("[%d]", i))
}

// ViaKey returns fe with every path prefixed by the key of a map: [key].
func (fe *Error) ViaKey(key string) *Error {
	return fe.ViaField("[" + key + "]")
}

// ViaFieldIndex is ViaIndex(i) then ViaField(field): a problem of element i of list field.
func (fe *Error) ViaFieldIndex(field string, i int) *Error {
	return fe.ViaIndex(i).ViaField(field)
}

// ViaFieldKey is ViaKey(key) then ViaField(field): a problem of entry key of map field.
func (fe *Error) ViaFieldKey(field, key string) *Error {
	return fe.ViaKey(key).ViaField(field)
}

// prefixed returns paths each with prefix in front.
func prefixed(prefix, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = joinPath(append(slices.Clip(prefix), p))
	}
	return out
}

// joinPath joins the parts of a field path with dots, dropping empty parts and attaching an
// index or key ([0], [name]) to the part before it: data, [2], to is data[2].to.
func joinPath(parts []string) string {
	var b strings.Builder
	for _, part := range parts {
		for p := range strings.SplitSeq(part, ".") {
			switch {
			case p == Current:
			case b.Len() > 0 && strings.HasPrefix(p, "[") && strings.HasSuffix(p, "]"):
				b.WriteString(p)
			default:
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(p)
			}
		}
	}
	return b.String()
}

// WrappedErrors returns fe's problems, those with the same message and details merged into
// one naming all their fields, sorted by message, then details; each one's paths sorted.
func (fe *Error) WrappedErrors() []*Error {
	var out []*Error
	index := make(map[[2]string]*Error)
	for _, p := range fe.problems() {
		k := [2]string{p.Message, p.Details}
		m, ok := index[k]
		if !ok {
			m = &Error{Message: p.Message, Details: p.Details}
			index[k] = m
			out = append(out, m)
		}
		for _, path := range p.Paths {
			if !slices.Contains(m.Paths, path) {
				m.Paths = append(m.Paths, path)
			}
		}
	}
	for _, m := range out {
		slices.Sort(m.Paths)
	}
	slices.SortFunc(out, func(a, b *Error) int {
		return cmp.Or(strings.Compare(a.Message, b.Message), strings.Compare(a.Details, b.Details))
	})
	return out
}

// Error lists the problems one a line, as "message: path, path" followed by a line of
// details when there are any.
func (fe *Error) Error() string {
	var b strings.Builder
	for i, p := range fe.WrappedErrors() {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Message)
		b.WriteString(": ")
		b.WriteString(strings.Join(p.Paths, ", "))
		if p.Details != "" {
			b.WriteByte('\n')
			b.WriteString(p.Details)
		}
	}
	return b.String()
}
