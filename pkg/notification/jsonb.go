package notification

import (
	"strconv"
	"unicode/utf8"

	"github.com/pulse-knative/pulse/pkg/fielderr"
)

// Limits of PostgreSQL's jsonb, which stores a request's data. A number is stored as numeric:
// its most significant digit may stand at most 131071 places before the decimal point (131072
// digits), it may have at most 16383 digits after it (trailing zeros and all, as written), and
// its exponent must be smaller in magnitude than 2^30-1 even when the value is zero. Pulse
// checks data against them so that a request PostgreSQL would refuse gets a 400 naming the
// value instead of failing the statement it shares with other requests.
const (
	// MaxDataDepth bounds how deeply data's arrays and objects nest. PostgreSQL's parser
	// recurses and fails past its stack limit (max_stack_depth); payloads never need this many.
	MaxDataDepth = 512

	maxNumericWeight = 131071 // 10^131071 is the highest digit position numeric holds
	maxNumericScale  = 16383  // NUMERIC_DSCALE_MAX
	maxNumericExp    = 1<<30 - 1
)

// ValidateJSONB checks a syntactically valid JSON document (on anything else its answer means
// nothing, but it returns) against what PostgreSQL's jsonb stores: strings of valid UTF-8 with no \u0000 escape and no unpaired surrogate escape,
// numbers within numeric's range, and nesting at most MaxDataDepth deep. Each bad value is
// reported by its path below field, such as data.items[3]; values are never echoed.
func ValidateJSONB(doc []byte, field string) *fielderr.Error {
	w := jsonbWalker{doc: doc}
	w.value(field, 0)
	return w.errs
}

type jsonbWalker struct {
	doc  []byte
	pos  int
	errs *fielderr.Error
	// stop ends the walk: a document too deep is reported once, not at every level.
	stop bool
}

func (w *jsonbWalker) fail(path, msg string) {
	if len(w.errs.WrappedErrors()) < 20 {
		w.errs = w.errs.Also(fielderr.New(msg, path))
	}
}

func (w *jsonbWalker) space() {
	for w.pos < len(w.doc) {
		switch w.doc[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// value walks one value at w.pos. The document has been parsed already, so the walk trusts its
// syntax and only stops at the end of the input.
func (w *jsonbWalker) value(path string, depth int) {
	w.space()
	if w.pos >= len(w.doc) || w.stop {
		return
	}
	switch c := w.doc[w.pos]; {
	case c == '{' || c == '[':
		if depth >= MaxDataDepth {
			w.fail(path, "nests deeper than "+strconv.Itoa(MaxDataDepth)+" levels")
			w.stop = true
			return
		}
		w.pos++
		for i := 0; !w.stop; i++ {
			w.space()
			if w.pos >= len(w.doc) {
				return
			}
			if w.doc[w.pos] == '}' || w.doc[w.pos] == ']' {
				w.pos++
				return
			}
			if w.doc[w.pos] == ',' {
				w.pos++
				w.space()
			}
			if c == '[' {
				w.value(path+"["+strconv.Itoa(i)+"]", depth+1)
				continue
			}
			key, ok := w.str(path)
			if !ok {
				key = "?"
			}
			w.space()
			w.pos++ // ':'
			w.value(keyPath(path, key), depth+1)
		}
	case c == '"':
		w.str(path)
	case c == '-' || (c >= '0' && c <= '9'):
		w.number(path)
	default: // true, false, null
		start := w.pos
		for w.pos < len(w.doc) && w.doc[w.pos] >= 'a' && w.doc[w.pos] <= 'z' {
			w.pos++
		}
		if w.pos == start {
			w.pos++ // not JSON: move on rather than loop
		}
	}
}

// keyPath names an object member: data.order for plain keys, data[some key] for others, as
// fielderr.Error's ViaKey does for map keys.
func keyPath(path, key string) string {
	plain := key != ""
	for i := 0; i < len(key) && plain; i++ {
		c := key[i]
		plain = c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
	}
	if plain {
		return path + "." + key
	}
	return path + "[" + key + "]"
}

// str walks a string at w.pos and returns its text when it is storable (escapes left as
// written; it serves only to name keys in paths).
func (w *jsonbWalker) str(path string) (string, bool) {
	start := w.pos + 1
	w.pos++
	ok := true
	for w.pos < len(w.doc) {
		c := w.doc[w.pos]
		switch {
		case c == '"':
			s := string(w.doc[start:w.pos])
			w.pos++
			return s, ok
		case c == '\\':
			if w.pos+1 < len(w.doc) && w.doc[w.pos+1] == 'u' {
				if msg := w.unicodeEscape(); msg != "" {
					w.fail(path, msg)
					ok = false
				}
				continue
			}
			w.pos += 2
		case c < utf8.RuneSelf:
			w.pos++
		default:
			r, n := utf8.DecodeRune(w.doc[w.pos:])
			if r == utf8.RuneError && n <= 1 {
				w.fail(path, "must be valid UTF-8")
				ok = false
				n = 1
			}
			w.pos += n
		}
	}
	return "", false
}

// unicodeEscape reads a \uXXXX escape at w.pos (and the low half following a high surrogate)
// and returns why jsonb refuses it, or "".
func (w *jsonbWalker) unicodeEscape() string {
	r, ok := w.hex4(w.pos)
	if !ok {
		w.pos += 2
		return ""
	}
	w.pos += 6
	switch {
	case r == 0:
		return `must not contain \u0000`
	case r >= 0xDC00 && r <= 0xDFFF:
		return "must not contain an unpaired surrogate escape"
	case r >= 0xD800 && r <= 0xDBFF:
		if w.pos+1 < len(w.doc) && w.doc[w.pos] == '\\' && w.doc[w.pos+1] == 'u' {
			if lo, ok := w.hex4(w.pos); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				w.pos += 6
				return ""
			}
		}
		return "must not contain an unpaired surrogate escape"
	}
	return ""
}

func (w *jsonbWalker) hex4(at int) (rune, bool) {
	if at+6 > len(w.doc) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(w.doc[at+2:at+6]), 16, 32)
	return rune(v), err == nil
}

// number walks a number at w.pos and checks it against numeric's range, as PostgreSQL's
// numeric input reads it.
func (w *jsonbWalker) number(path string) {
	if w.doc[w.pos] == '-' {
		w.pos++
	}
	digits := func() (int, int) { // count, index of the first non-zero digit or -1
		start, first := w.pos, -1
		for w.pos < len(w.doc) && w.doc[w.pos] >= '0' && w.doc[w.pos] <= '9' {
			if first < 0 && w.doc[w.pos] != '0' {
				first = w.pos - start
			}
			w.pos++
		}
		return w.pos - start, first
	}
	intLen, intFirst := digits()
	fracLen, fracFirst := 0, -1
	if w.pos < len(w.doc) && w.doc[w.pos] == '.' {
		w.pos++
		fracLen, fracFirst = digits()
	}
	exp := 0
	expTooLarge := false
	if w.pos < len(w.doc) && (w.doc[w.pos] == 'e' || w.doc[w.pos] == 'E') {
		w.pos++
		neg := false
		if w.pos < len(w.doc) && (w.doc[w.pos] == '+' || w.doc[w.pos] == '-') {
			neg = w.doc[w.pos] == '-'
			w.pos++
		}
		for w.pos < len(w.doc) && w.doc[w.pos] >= '0' && w.doc[w.pos] <= '9' {
			if !expTooLarge {
				exp = exp*10 + int(w.doc[w.pos]-'0')
				expTooLarge = exp >= maxNumericExp
			}
			w.pos++
		}
		if neg {
			exp = -exp
		}
	}
	const outOfRange = "is a number outside PostgreSQL's numeric range (at most 131072 digits before the decimal point and 16383 after)"
	if expTooLarge {
		w.fail(path, outOfRange)
		return
	}
	// Digits after the point count as written, trailing zeros too; a positive exponent
	// moves them before it.
	if fracLen-exp > maxNumericScale {
		w.fail(path, outOfRange)
		return
	}
	// The most significant non-zero digit's power of ten; zero has none and always fits.
	var top int
	switch {
	case intFirst >= 0:
		top = intLen - 1 - intFirst + exp
	case fracFirst >= 0:
		top = -1 - fracFirst + exp
	default:
		return
	}
	if top > maxNumericWeight {
		w.fail(path, outOfRange)
	}
}
