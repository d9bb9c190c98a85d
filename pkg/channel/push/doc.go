// Package push owns the push channel's provider: Firebase Cloud Messaging's HTTP v1 API,
// authenticated with an OAuth2 access token obtained from a service-account key through
// golang.org/x/oauth2's JWT-bearer flow. The token is cached, shared by every send of the
// pod, and fetched again only shortly before it expires.
//
// It parses an FCM account URL (ParseURL), builds one FCM message per Send from a
// notification (Subject as title, Body as body, and the data object's string map and
// android, apns and webpush overrides, see notification.PushData), and classifies FCM's
// answer: 2xx delivered, with the message name as provider message id; UNREGISTERED
// permanent and undeliverable (the token is suppressed); INVALID_ARGUMENT and other 4xx
// permanent; QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL, 429 and 5xx transient, honouring
// Retry-After.
//
// It does not retry, fail over, rate-limit or suppress; the channel framework and the
// delivery package do that with the Result it returns. It never logs and never puts
// credentials, tokens or message content into errors.
package push
