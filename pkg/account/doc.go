// Package account owns a channel's provider accounts: the registry that turns an account URL
// into a channel.Provider by its scheme, failover along a channel's ordered accounts, a
// circuit breaker per account per pod (sony/gobreaker), and the per-account rate limit
// every deliver pod shares through Redis (GCRA, go-redis/redis_rate).
//
// A Failover is itself a channel.Provider. Its Result names the account that handled the
// send; when every account was at its rate limit no send happened and the Result wraps
// ErrThrottled, so the delivery package puts the notification back instead of counting an
// attempt.
//
// It does not speak any provider's protocol (pkg/channel and its sub-packages do), and it
// does not read configuration: config.Accounts arrive decoded.
package account
