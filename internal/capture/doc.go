// Package capture holds the receivers `pulse dev` and the end-to-end tests point Pulse at, so
// a run on a laptop needs no accounts anywhere: a webhook receiver that checks each delivery's
// Standard Webhooks signature, counts deliveries per notification and can be told to fail; an
// SMTP server (STARTTLS or implicit TLS, optional AUTH PLAIN) that parses each message as
// MIME, counts messages per notification and can be told to reject or drop a transaction; a
// Twilio-shaped SMS endpoint; and an FCM-shaped push endpoint with the OAuth2 token endpoint
// that grants its JWT-bearer assertions. Each prints what it receives.
package capture
