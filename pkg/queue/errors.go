package queue

import (
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/notification"
)

// ErrUnavailable wraps errors that mean Redis could not be reached or is not serving yet
// (loading, failing over): the request may succeed if tried again. Like store.ErrUnavailable
// it reports Unavailable() true, which the HTTP layer answers with 503.
var ErrUnavailable error = notification.UnavailableError("redis unavailable")

// transientReplies are the prefixes of Redis error replies that a later try may not get.
var transientReplies = []string{"LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY"}

// Unavailable marks connection failures, timeouts and transient error replies with
// ErrUnavailable. Other error replies (a wrong type, a script error) pass unchanged.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		transient := false
		for _, p := range transientReplies {
			transient = transient || strings.HasPrefix(reply.Error(), p)
		}
		if !transient {
			return err
		}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
