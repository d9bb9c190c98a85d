package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrInvalidInput means PostgreSQL refused a value of a request itself: a data exception
// (SQLSTATE class 22, such as text that is not UTF-8 or data jsonb cannot hold) or an
// integrity constraint violation (class 23). Sending the same request again can never
// succeed, and the other requests sharing its statement are not at fault.
var ErrInvalidInput = errors.New("a value the database cannot store")

// InputError is an ErrInvalidInput naming the request field at fault, as ingest names its
// fields (source, id, data.to, data.data, ...), when the database tells which.
type InputError struct {
	// Field is the field at fault, or "" when the database does not say.
	Field string
	// Code is PostgreSQL's SQLSTATE.
	Code string
}

// Error says what was refused without PostgreSQL's message, which may quote the value.
func (e *InputError) Error() string {
	field := e.Field
	if field == "" {
		field = "a field"
	}
	return fmt.Sprintf("%s holds a value the database cannot store (SQLSTATE %s)", field, e.Code)
}

// Unwrap makes an InputError match ErrInvalidInput.
func (e *InputError) Unwrap() error { return ErrInvalidInput }

// Reason says why the value was refused, in words fit for a 400 answer.
func (e *InputError) Reason() string {
	switch e.Code {
	case "22021":
		return "must be UTF-8 text without NUL characters"
	case "22P05", "22P02":
		return "must be JSON that PostgreSQL's jsonb can store (no \\u0000, no unpaired surrogate escapes)"
	case "22003":
		return "holds a number outside PostgreSQL's numeric range"
	}
	return "holds a value the database cannot store"
}

// inputError turns a statement's data or constraint error into an *InputError naming the
// field behind the parameter it concerns; params maps parameter numbers ($n) to fields.
// Other errors pass unchanged.
func inputError(err error, params map[string]string, jsonField string) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || (!strings.HasPrefix(pgErr.Code, "22") && !strings.HasPrefix(pgErr.Code, "23")) {
		return err
	}
	ie := &InputError{Code: pgErr.Code}
	if n, ok := strings.CutPrefix(pgErr.Where, "unnamed portal parameter "); ok {
		ie.Field = params[strings.Fields(n)[0]]
	} else if strings.HasPrefix(pgErr.Where, "JSON data") || pgErr.Code == "22003" || pgErr.Code == "22P05" {
		// PostgreSQL does not say which column: in Insert, data is the likely one (metadata
		// is marshalled from strings validated as text); Unstorable checks them apart.
		ie.Field = jsonField
	}
	return ie
}

// insertParams names the fields behind Insert's parameters.
var insertParams = map[string]string{"$2": "source", "$3": "id", "$7": "data.to", "$8": "data.subject",
	"$9": "data.body", "$10": "data.html", "$11": "data.data", "$12": "data.metadata"}

// checkParams names the fields behind Unstorable's parameters.
var checkParams = map[string]string{"$1": "source", "$2": "id", "$3": "data.to", "$4": "data.subject",
	"$5": "data.body", "$6": "data.html", "$7": "data.data"}

// Unstorable finds the first of items PostgreSQL cannot store, without storing anything: it
// returns its index and *InputError, or -1 and nil when every item is storable. Insert does
// not say which item of a statement is at fault, nor whether data or metadata when jsonb
// refuses one; this does, for the rare request whose bad value passed validation.
func (s *Store) Unstorable(ctx context.Context, items []NewNotification) (int, error) {
	for i, it := range items {
		r := it.Request
		_, err := s.pool.Exec(ctx, `select $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text::jsonb`,
			it.Source, it.EventID, r.To, r.Subject, r.Body, r.HTML, jsonText(r.Data))
		if err != nil {
			err = inputError(unavailable(err), checkParams, "data.data")
		} else if _, err = s.pool.Exec(ctx, `select $1::text::jsonb`, metadataText(r.Metadata)); err != nil {
			err = inputError(unavailable(err), nil, "data.metadata")
		}
		var ie *InputError
		if errors.As(err, &ie) {
			return i, ie
		}
		if err != nil {
			return -1, fmt.Errorf("check notifications: %w", err)
		}
	}
	return -1, nil
}
