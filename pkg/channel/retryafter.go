package channel

import "time"

// ParseRetryAfter reads an HTTP Retry-After header, delay-seconds or an HTTP date, as a wait
// from now, for the providers of every channel. It returns 0 for an absent, malformed or past
// value and caps the wait at 24 hours, so a hostile or broken peer cannot park a notification
// for years.
func ParseRetryAfter(value string, now time.Time) time.Duration {
	return retryAfter(value, now)
}
