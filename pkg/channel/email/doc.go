// Package email sends email notifications over SMTP: STARTTLS (required or opportunistic) or
// implicit TLS, SMTP AUTH, plain text and HTML as multipart/alternative, and a bounded pool of
// connections reused across deliveries. It builds and writes messages with
// github.com/wneessen/go-mail and drives the SMTP transaction itself, so that every reply is
// classified by the command it answered.
//
// One Provider is one account: a relay, its credentials and its From address, configured by
// an account URL (see ParseURL). Each message carries a Message-ID that Pulse derives from the
// notification id, the same on every attempt, and an X-Pulse-Notification-Id header, so a
// receiver can recognise a repeated attempt.
//
// What a send came to: a 250 after DATA is Delivered; a 4xx reply, a dropped connection, a
// TLS or AUTH failure is Transient; any other 5xx reply is Permanent, and a recipient that
// does not exist (5.1.1 and its kin) is also Undeliverable.
//
// It does not choose between accounts, rate-limit or suppress addresses; the channel
// framework does that with the Result. It never logs, and never puts the password or the
// message body into an error.
package email
