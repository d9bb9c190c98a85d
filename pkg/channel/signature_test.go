package channel_test

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/channel"
)

// The published Standard Webhooks test vector: reproducing it is what says a receiver's own
// library will accept what Pulse sends.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignWebhookReproducesTheSpecVector(t *testing.T) {
	t.Parallel()

	got, err := channel.SignWebhook(vectorSecret, vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorBody))
	require.NoError(t, err)
	require.Equal(t, vectorSignature, got)
}

func vectorHeader(signature string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", vectorID)
	h.Set("webhook-timestamp", strconv.Itoa(vectorTimestamp))
	h.Set("webhook-signature", signature)
	return h
}

// editedVectorHeader is the vector's signed header after edit.
func editedVectorHeader(edit func(h http.Header)) http.Header {
	h := vectorHeader(vectorSignature)
	edit(h)
	return h
}

func TestVerifyWebhook(t *testing.T) {
	t.Parallel()

	sent := time.Unix(vectorTimestamp, 0)
	otherSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("o", 32)))
	tests := map[string]struct {
		secret  string
		header  http.Header
		body    string
		now     time.Time
		wantErr error // nil means the message verifies
	}{
		"authentic": {
			header: vectorHeader(vectorSignature),
		},
		"authentic within tolerance, receiver's clock ahead": {
			header: vectorHeader(vectorSignature),
			now:    sent.Add(4 * time.Minute),
		},
		"authentic within tolerance, receiver's clock behind": {
			header: vectorHeader(vectorSignature),
			now:    sent.Add(-4 * time.Minute),
		},
		"one of several signatures matches": {
			header: vectorHeader("v1,bm9wZQ== v2,abc " + vectorSignature + " v1a,zzz"),
		},
		"tampered body": {
			header:  vectorHeader(vectorSignature),
			body:    `{"test": 2432232315}`,
			wantErr: channel.ErrWebhookSignature,
		},
		"wrong secret": {
			secret:  otherSecret,
			header:  vectorHeader(vectorSignature),
			wantErr: channel.ErrWebhookSignature,
		},
		"stale timestamp": {
			header:  vectorHeader(vectorSignature),
			now:     sent.Add(6 * time.Minute),
			wantErr: channel.ErrWebhookTimestamp,
		},
		"timestamp from the future": {
			header:  vectorHeader(vectorSignature),
			now:     sent.Add(-6 * time.Minute),
			wantErr: channel.ErrWebhookTimestamp,
		},
		"tampered id": {
			header:  editedVectorHeader(func(h http.Header) { h.Set("webhook-id", "msg_other") }),
			wantErr: channel.ErrWebhookSignature,
		},
		"right MAC under another version": {
			header:  vectorHeader("v2," + strings.TrimPrefix(vectorSignature, "v1,")),
			wantErr: channel.ErrWebhookSignature,
		},
		"signature not base64": {
			header:  vectorHeader("v1,!!!"),
			wantErr: channel.ErrWebhookSignature,
		},
		"missing signature": {
			header:  editedVectorHeader(func(h http.Header) { h.Del("webhook-signature") }),
			wantErr: channel.ErrWebhookHeaders,
		},
		"missing id": {
			header:  editedVectorHeader(func(h http.Header) { h.Del("webhook-id") }),
			wantErr: channel.ErrWebhookHeaders,
		},
		"timestamp not a number": {
			header:  editedVectorHeader(func(h http.Header) { h.Set("webhook-timestamp", "2021-02-25T15:02:10Z") }),
			wantErr: channel.ErrWebhookHeaders,
		},
		"malformed secret": {
			secret:  "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			header:  vectorHeader(vectorSignature),
			wantErr: channel.ErrWebhookSecret,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()

			secret := tt.secret
			if secret == "" {
				secret = vectorSecret
			}
			body := tt.body
			if body == "" {
				body = vectorBody
			}
			now := tt.now
			if now.IsZero() {
				now = sent
			}
			err := channel.VerifyWebhook(secret, tt.header, []byte(body), now, 0)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), strings.TrimPrefix(secret, "whsec_"))
		})
	}
}

func TestVerifyWebhookTolerance(t *testing.T) {
	t.Parallel()

	now := time.Unix(vectorTimestamp, 0).Add(time.Hour)
	err := channel.VerifyWebhook(vectorSecret, vectorHeader(vectorSignature), []byte(vectorBody), now, 2*time.Hour)
	require.NoError(t, err)
	err = channel.VerifyWebhook(vectorSecret, vectorHeader(vectorSignature), []byte(vectorBody), now, 30*time.Minute)
	require.ErrorIs(t, err, channel.ErrWebhookTimestamp)
}

func TestMalformedSecret(t *testing.T) {
	t.Parallel()

	tests := map[string]string{
		"empty":             "",
		"no prefix":         "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"prefix only":       "whsec_",
		"not base64":        "whsec_not*base64*at*all*not*base64*",
		"url-safe alphabet": "whsec_" + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xfb", 24))),
		"key too short":     "whsec_" + base64.StdEncoding.EncodeToString([]byte("short key")),
		"wrong prefix":      "wh_sec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	}
	for name, secret := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()

			w, err := channel.NewWebhook(channel.WebhookConfig{Secret: secret})
			require.ErrorIs(t, err, channel.ErrWebhookSecret)
			require.Nil(t, w)
			if key := strings.TrimPrefix(secret, "whsec_"); key != "" {
				require.NotContains(t, err.Error(), key)
			}

			_, err = channel.SignWebhook(secret, "id", time.Unix(0, 0), nil)
			require.ErrorIs(t, err, channel.ErrWebhookSecret)
		})
	}
}

func FuzzVerifyWebhook(f *testing.F) {
	f.Add(vectorID, strconv.Itoa(vectorTimestamp), vectorSignature, []byte(vectorBody))
	f.Add(vectorID, strconv.Itoa(vectorTimestamp), "v1,bm9wZQ== "+vectorSignature, []byte(vectorBody))
	f.Add("", "", "", []byte(nil))
	f.Add("id", "-9223372036854775808", "v1,", []byte("{}"))
	f.Add("id", "9223372036854775807", ",,, v1 v1,=", []byte("{}"))
	f.Add("id.with.dots", "1614265330 ", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", []byte("\x00\xff"))

	now := time.Unix(vectorTimestamp, 0)
	f.Fuzz(func(t *testing.T, id, timestamp, signature string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", timestamp)
		h.Set("webhook-signature", signature)
		_ = channel.VerifyWebhook(vectorSecret, h, body, now, 0)

		// Whatever the id and body, what SignWebhook signs verifies, and nothing else does.
		if id == "" {
			return
		}
		sig, err := channel.SignWebhook(vectorSecret, id, now, body)
		require.NoError(t, err)
		h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		h.Set("webhook-signature", sig)
		require.NoError(t, channel.VerifyWebhook(vectorSecret, h, body, now, 0))
		tampered := append([]byte{'x'}, body...)
		require.ErrorIs(t, channel.VerifyWebhook(vectorSecret, h, tampered, now, 0), channel.ErrWebhookSignature)
	})
}
