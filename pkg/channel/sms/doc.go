// Package sms owns the SMS channel's provider: Twilio's Messages API, or any API that speaks
// it (base_url points elsewhere, as tests and `pulse dev` do).
//
// It parses a Twilio account URL (ParseURL), sends one message per Send with HTTP Basic auth
// (account SID and auth token, or API key SID and secret), and classifies Twilio's answer:
// 2xx delivered, with the message sid as the provider message id; 429 (error 20429) and 5xx
// transient, honouring Retry-After; every other answer permanent, with Twilio's error code
// recorded, and errors 21211 (not a valid number) and 21610 (the recipient replied STOP)
// marking the number undeliverable so it is suppressed.
//
// It does not retry, fail over between accounts, rate-limit or suppress; the channel
// framework and the delivery package do that with the Result it returns. It never logs and
// never puts credentials or message bodies into errors.
package sms
