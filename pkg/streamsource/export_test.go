package streamsource

import (
	"context"

	"github.com/pulse-knative/pulse/pkg/queue"
)

// Send sends the event of m to the sink once, as a send of the running source does, and
// returns the sink's status.
func (s *Source) Send(ctx context.Context, m queue.Message) (int, error) { return s.send(ctx, m) }

// HeaderValue is headerValue, for tests.
var HeaderValue = headerValue
