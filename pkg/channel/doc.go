// Package channel owns the channel providers, the code that hands one notification to the
// outside world (an SMTP server, an SMS or push API, a webhook receiver), and the
// classification of what each send came to: delivered, transient (retry after backoff,
// honouring Retry-After) or permanent (fail now).
//
// It also owns the webhook provider's wire format: the Standard Webhooks signature
// (SignWebhook, VerifyWebhook) and the guard that keeps webhooks away from loopback, private,
// link-local and cloud metadata addresses.
//
// The providers of HTTP APIs (SMS and push) share what is the same in each: APIClient, which
// sends through one pooled client that never follows redirects, reads bounded answers and
// words their failures, and the parsing of an account URL's scheme and query
// (ParseAccountURL, ReadAccountParams).
//
// It does not claim notifications, record outcomes or attempts, or schedule retries; the
// delivery package does that with the Result a Provider returns. Providers never log, and
// never put secrets or message bodies into errors.
package channel
