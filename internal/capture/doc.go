// Package capture holds the receivers `pulse dev` and the end-to-end tests point Pulse at: a
// webhook receiver that checks each delivery's Standard Webhooks signature, counts deliveries
// per notification and can be told to fail, and an SMTP server (STARTTLS or implicit TLS,
// optional AUTH PLAIN) that parses each message as MIME, counts messages per notification and
// can be told to reject or drop a transaction, so a run on a laptop needs no accounts
// anywhere.
package capture
