package capture

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// FCMScope is the scope an access token for FCM's HTTP v1 API is asked for.
const FCMScope = "https://www.googleapis.com/auth/firebase.messaging"

// FCMUnregisteredPrefix starts the device tokens the FCM capture answers UNREGISTERED, as FCM
// does for an app that was uninstalled: send to one to see a token suppressed.
const FCMUnregisteredPrefix = "unregistered"

// ServiceAccountKey is a generated Google service-account key, for `pulse dev` and tests.
type ServiceAccountKey struct {
	// JSON is the key file, as the Google Cloud console downloads it.
	JSON []byte
	// Email is its client_email, the JWT issuer.
	Email string
	// Public is the public half of its private key, to verify the JWTs it signs.
	Public *rsa.PublicKey
}

// NewServiceAccountKey generates a service-account key for project whose token_uri is
// tokenURL.
func NewServiceAccountKey(project, tokenURL string) (*ServiceAccountKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate service-account key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("generate service-account key: %w", err)
	}
	id := make([]byte, 20)
	_, _ = rand.Read(id)
	email := "pulse-dev@" + project + ".iam.gserviceaccount.com"
	file, err := json.MarshalIndent(map[string]string{
		"type":           "service_account",
		"project_id":     project,
		"private_key_id": hex.EncodeToString(id),
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   email,
		"client_id":      "100000000000000000001",
		"token_uri":      tokenURL,
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("generate service-account key: %w", err)
	}
	return &ServiceAccountKey{JSON: file, Email: email, Public: &key.PublicKey}, nil
}

// JWTClaims are the claims of a JWT-bearer grant's assertion that a token endpoint checks.
type JWTClaims struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Exp   int64  `json:"exp"`
	Iat   int64  `json:"iat"`
}

// VerifyJWTAssertion checks a JWT-bearer assertion (RFC 7523) the way Google's token
// endpoint does: an RS256 signature by pub over header.claims, and returns its claims.
func VerifyJWTAssertion(assertion string, pub *rsa.PublicKey) (JWTClaims, error) {
	var claims JWTClaims
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return claims, errors.New("the assertion is not a JWS compact serialization")
	}
	var header struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if err := decodeSegment(parts[0], &header); err != nil || header.Alg != "RS256" {
		return claims, errors.New("the assertion's header does not name RS256")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return claims, errors.New("the assertion's signature is not base64url")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return claims, errors.New("the assertion's signature does not verify")
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return claims, errors.New("the assertion's claims are not JSON")
	}
	return claims, nil
}

func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// PushMessage is one message the FCM capture accepted.
type PushMessage struct {
	// Name is the message's name in the capture's answer, the provider message id.
	Name    string
	Project string
	Token   string
	Title   string
	Body    string
	Data    map[string]string
	// Overrides names the platform overrides given: android, apns, webpush.
	Overrides []string
}

// FCM is an FCM-shaped endpoint: a token endpoint at /token that grants JWT-bearer
// assertions signed by one service-account key, and FCM's HTTP v1 messages:send, which
// accepts messages carrying a token it granted. It prints each message when out is not nil.
// It is safe for concurrent use.
type FCM struct {
	key *ServiceAccountKey
	out io.Writer
	now func() time.Time

	mu       sync.Mutex
	tokens   map[string]bool
	grants   int
	messages *inbox[PushMessage]
}

// NewFCM returns an FCM capture that trusts key.
func NewFCM(key *ServiceAccountKey, out io.Writer) *FCM {
	return &FCM{key: key, out: out, now: time.Now, tokens: map[string]bool{}, messages: newInbox[PushMessage]()}
}

// ServeHTTP implements http.Handler.
func (f *FCM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/token":
		f.grant(w, r)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/projects/") && strings.HasSuffix(r.URL.Path, "/messages:send"):
		f.send(w, r, strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/projects/"), "/messages:send"))
	default:
		fcmError(w, http.StatusNotFound, "NOT_FOUND", "", "no such endpoint")
	}
}

func (f *FCM) grant(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		oauthError(w, "unsupported_grant_type")
		return
	}
	claims, err := VerifyJWTAssertion(r.PostForm.Get("assertion"), f.key.Public)
	now := f.now().Unix()
	if err != nil || claims.Iss != f.key.Email || claims.Scope != FCMScope || claims.Exp < now || claims.Iat > now+60 {
		oauthError(w, "invalid_grant")
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := "ya29.pulse-dev-" + hex.EncodeToString(b)
	f.mu.Lock()
	f.tokens[token] = true
	f.grants++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": 3600})
}

func (f *FCM) send(w http.ResponseWriter, r *http.Request, project string) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	ok = ok && f.tokens[token]
	f.mu.Unlock()
	if !ok {
		fcmError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "", "Request had invalid authentication credentials.")
		return
	}
	var req struct {
		Message struct {
			Token        string                        `json:"token"`
			Notification *struct{ Title, Body string } `json:"notification"`
			Data         map[string]string             `json:"data"`
			Android      json.RawMessage               `json:"android"`
			APNS         json.RawMessage               `json:"apns"`
			Webpush      json.RawMessage               `json:"webpush"`
		} `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.Message.Token == "" {
		fcmError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "The message is not valid JSON or has no token.")
		return
	}
	m := req.Message
	if strings.HasPrefix(m.Token, FCMUnregisteredPrefix) {
		if f.out != nil {
			fmt.Fprintf(f.out, "push REFUSED: token %s is unregistered (FCM answers 404 UNREGISTERED)\n", m.Token)
		}
		fcmError(w, http.StatusNotFound, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
		return
	}
	got := PushMessage{Project: project, Token: m.Token, Data: m.Data}
	if m.Notification != nil {
		got.Title, got.Body = m.Notification.Title, m.Notification.Body
	}
	for name, v := range map[string]json.RawMessage{"android": m.Android, "apns": m.APNS, "webpush": m.Webpush} {
		if len(v) > 0 && string(v) != "null" {
			got.Overrides = append(got.Overrides, name)
		}
	}
	got = f.messages.add(got, func(m *PushMessage, n int) {
		m.Name = fmt.Sprintf("projects/%s/messages/0:%d", project, n)
	})
	if f.out != nil {
		data, _ := json.Marshal(got.Data)
		fmt.Fprintf(f.out, "push received: project %s token %s title=%q body=%q data=%s overrides=%v\n",
			project, got.Token, got.Title, got.Body, data, got.Overrides)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"name": got.Name})
}

// Received is signalled (without blocking, so it may coalesce) after each accepted message.
func (f *FCM) Received() <-chan struct{} { return f.messages.received }

// Messages returns a copy of the messages accepted so far.
func (f *FCM) Messages() []PushMessage { return f.messages.all() }

// Grants returns how many access tokens the token endpoint has granted.
func (f *FCM) Grants() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.grants
}

func fcmError(w http.ResponseWriter, status int, rpcStatus, fcmCode, message string) {
	e := map[string]any{"code": status, "message": message, "status": rpcStatus}
	if fcmCode != "" {
		e["details"] = []map[string]string{{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcmCode}}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
}

func oauthError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}
