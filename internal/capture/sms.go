package capture

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Twilio's magic test numbers, which the SMS capture answers as Twilio answers them: send to
// one to see a number suppressed.
const (
	// TwilioInvalidNumber gets error 21211, "The 'To' number is not a valid phone number."
	TwilioInvalidNumber = "+15005550001"
	// TwilioUnsubscribed gets error 21610, the recipient replied STOP.
	TwilioUnsubscribed = "+15005550004"
)

// SMSMessage is one message the SMS capture accepted.
type SMSMessage struct {
	SID                 string
	AccountSID          string
	To                  string
	From                string
	MessagingServiceSID string
	Body                string
	// Received is when the capture accepted it.
	Received time.Time
}

// Twilio is a Twilio-shaped endpoint: POST /2010-04-01/Accounts/{AccountSid}/Messages.json
// with HTTP Basic auth and the form fields of Twilio's Messages API, answered 201 with the
// message's sid, or with Twilio's error body for a missing field or a magic test number. It
// prints each message when out is not nil. It is safe for concurrent use.
type Twilio struct {
	user, password string
	out            io.Writer

	messages *inbox[SMSMessage]
}

// NewTwilio returns an SMS capture that accepts the Basic credentials user and password.
func NewTwilio(user, password string, out io.Writer) *Twilio {
	return &Twilio{user: user, password: password, out: out, messages: newInbox[SMSMessage]()}
}

// ServeHTTP implements http.Handler.
func (tw *Twilio) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	account, ok := strings.CutPrefix(r.URL.Path, "/2010-04-01/Accounts/")
	account, ok2 := strings.CutSuffix(account, "/Messages.json")
	if r.Method != http.MethodPost || !ok || !ok2 || account == "" || strings.Contains(account, "/") {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource was not found")
		return
	}
	if user, password, ok := r.BasicAuth(); !ok || user != tw.user || password != tw.password {
		twilioError(w, http.StatusUnauthorized, 20003, "Authentication Error - invalid username")
		return
	}
	if err := r.ParseForm(); err != nil {
		twilioError(w, http.StatusBadRequest, 21601, "The form is not valid")
		return
	}
	m := SMSMessage{AccountSID: account, To: r.PostForm.Get("To"), From: r.PostForm.Get("From"),
		MessagingServiceSID: r.PostForm.Get("MessagingServiceSid"), Body: r.PostForm.Get("Body")}
	switch {
	case m.To == "":
		twilioError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
		return
	case m.From == "" && m.MessagingServiceSID == "":
		twilioError(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
		return
	case m.Body == "":
		twilioError(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	case m.To == TwilioInvalidNumber:
		tw.refused(m.To, 21211)
		twilioError(w, http.StatusBadRequest, 21211, "The 'To' number "+m.To+" is not a valid phone number.")
		return
	case m.To == TwilioUnsubscribed:
		tw.refused(m.To, 21610)
		twilioError(w, http.StatusBadRequest, 21610, "Attempt to send to unsubscribed recipient")
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	m.SID = "SM" + hex.EncodeToString(b)
	m.Received = time.Now()
	tw.messages.add(m, nil)
	if tw.out != nil {
		from := m.From
		if from == "" {
			from = m.MessagingServiceSID
		}
		fmt.Fprintf(tw.out, "sms received: %s to %s from %s: %q\n", m.SID, m.To, from, m.Body)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"sid": m.SID, "account_sid": account, "to": m.To, "from": m.From, "messaging_service_sid": m.MessagingServiceSID,
		"body": m.Body, "status": "queued", "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
		"uri": "/2010-04-01/Accounts/" + account + "/Messages/" + m.SID + ".json",
	})
}

func (tw *Twilio) refused(to string, code int) {
	if tw.out != nil {
		fmt.Fprintf(tw.out, "sms REFUSED: %s gets Twilio error %d\n", to, code)
	}
}

// Received is signalled (without blocking, so it may coalesce) after each accepted message.
func (tw *Twilio) Received() <-chan struct{} { return tw.messages.received }

// Messages returns a copy of the messages accepted so far.
func (tw *Twilio) Messages() []SMSMessage { return tw.messages.all() }

func twilioError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code": code, "message": message, "more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status,
	})
}
