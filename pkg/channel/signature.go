package channel

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// DefaultWebhookTolerance is how far a webhook-timestamp may be from the verifier's clock,
// either way, when VerifyWebhook is given no tolerance; the Standard Webhooks libraries use
// the same five minutes.
const DefaultWebhookTolerance = 5 * time.Minute

// webhookSecretPrefix starts every Standard Webhooks secret; the base64 key follows it.
const webhookSecretPrefix = "whsec_"

// minWebhookKeyBytes is the shortest key accepted: the Standard Webhooks spec asks for keys
// of 24 to 64 random bytes, and a shorter one is more likely a typo than a choice.
const minWebhookKeyBytes = 24

// Errors VerifyWebhook and NewWebhook wrap, so callers can tell them apart with errors.Is.
var (
	// ErrWebhookSecret reports a secret that is not "whsec_" followed by a base64 key.
	ErrWebhookSecret = errors.New("malformed webhook secret")
	// ErrWebhookHeaders reports a missing or malformed webhook-id, webhook-timestamp or
	// webhook-signature header.
	ErrWebhookHeaders = errors.New("malformed webhook headers")
	// ErrWebhookTimestamp reports a webhook-timestamp too far from the verifier's clock, as a
	// replayed message would have.
	ErrWebhookTimestamp = errors.New("webhook timestamp outside tolerance")
	// ErrWebhookSignature reports that no signature in webhook-signature matches the message.
	ErrWebhookSignature = errors.New("no matching webhook signature")
)

// parseWebhookSecret returns the HMAC key of a "whsec_" secret. Its errors never quote the
// secret.
func parseWebhookSecret(secret string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(secret, webhookSecretPrefix)
	if !ok {
		return nil, fmt.Errorf("parse webhook secret: %w: it must start with %q", ErrWebhookSecret, webhookSecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("parse webhook secret: %w: the key after %q is not standard base64", ErrWebhookSecret, webhookSecretPrefix)
	}
	if len(key) < minWebhookKeyBytes {
		return nil, fmt.Errorf("parse webhook secret: %w: the key is %d bytes, want at least %d", ErrWebhookSecret, len(key), minWebhookKeyBytes)
	}
	return key, nil
}

// parseWebhookSecrets returns the HMAC keys of one or more "whsec_" secrets separated by
// spaces or commas. Its errors name a bad secret by position, never by value.
func parseWebhookSecrets(secrets string) ([][]byte, error) {
	fields := strings.FieldsFunc(secrets, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	if len(fields) == 0 {
		return nil, fmt.Errorf("parse webhook secret: %w: it is empty", ErrWebhookSecret)
	}
	keys := make([][]byte, len(fields))
	for i, secret := range fields {
		key, err := parseWebhookSecret(secret)
		if err != nil {
			if len(fields) > 1 {
				return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(fields), err)
			}
			return nil, err
		}
		keys[i] = key
	}
	return keys, nil
}

// webhookMAC is the HMAC-SHA256 of "id.timestamp.body", the content Standard Webhooks signs.
func webhookMAC(key []byte, id string, unix int64, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, unix, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// webhookSignature is the webhook-signature header value for one key: "v1,<base64 MAC>".
func webhookSignature(key []byte, id string, unix int64, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(webhookMAC(key, id, unix, body))
}

// webhookSignatures is the webhook-signature header value for several keys: their
// signatures separated by spaces, as Standard Webhooks carries them.
func webhookSignatures(keys [][]byte, id string, unix int64, body []byte) string {
	if len(keys) == 1 {
		return webhookSignature(keys[0], id, unix, body)
	}
	sigs := make([]string, len(keys))
	for i, key := range keys {
		sigs[i] = webhookSignature(key, id, unix, body)
	}
	return strings.Join(sigs, " ")
}

// SignWebhook returns the webhook-signature header value ("v1,<base64 HMAC-SHA256>") of a
// message with webhook-id id, sent at ts with body, under a "whsec_" secret. Senders other
// than Webhook, such as tests of receivers, use it to sign the way Pulse does.
func SignWebhook(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := parseWebhookSecret(secret)
	if err != nil {
		return "", err
	}
	return webhookSignature(key, id, ts.Unix(), body), nil
}

// VerifyWebhook checks a received webhook per the Standard Webhooks spec: the
// webhook-timestamp is within tolerance of now (DefaultWebhookTolerance when tolerance is not
// positive), and one of the space-separated "v1,<base64>" signatures in webhook-signature is
// the HMAC-SHA256 of "id.timestamp.body" under secret. Signatures of other versions are
// skipped. It returns nil for an authentic message, and otherwise an error wrapping
// ErrWebhookSecret, ErrWebhookHeaders, ErrWebhookTimestamp or ErrWebhookSignature.
func VerifyWebhook(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := parseWebhookSecret(secret)
	if err != nil {
		return fmt.Errorf("verify webhook: %w", err)
	}
	id := header.Get(HeaderWebhookID)
	rawTS := header.Get(HeaderWebhookTimestamp)
	signatures := header.Get(HeaderWebhookSignature)
	if id == "" || rawTS == "" || signatures == "" {
		return fmt.Errorf("verify webhook: %w: want %s, %s and %s", ErrWebhookHeaders,
			HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature)
	}
	unix, err := strconv.ParseInt(rawTS, 10, 64)
	if err != nil {
		return fmt.Errorf("verify webhook: %w: %s is not unix seconds", ErrWebhookHeaders, HeaderWebhookTimestamp)
	}
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	// Sub saturates instead of overflowing, so absurd timestamps are simply out of tolerance.
	if skew := now.Sub(time.Unix(unix, 0)); skew > tolerance || skew < -tolerance {
		return fmt.Errorf("verify webhook: %w: %s is %s from now, tolerance %s", ErrWebhookTimestamp,
			HeaderWebhookTimestamp, skew.Round(time.Second), tolerance)
	}
	want := webhookMAC(key, id, unix, body)
	for _, sig := range strings.Fields(signatures) {
		version, encoded, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("verify webhook: %w", ErrWebhookSignature)
}
