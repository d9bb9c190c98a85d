// Package delivery owns sending one notification: it reads the dispatch event (Pulse's own,
// or Knative's RedisStreamSource event), claims the notification with one conditional UPDATE,
// sends it through its channel's provider, and records the outcome, the attempt and the next
// attempt time before answering. Its metrics go to Redis after the answer, in shared batches.
//
// deliver-high and deliver-low are this package built with different priorities. It does not
// release retries when they fall due (the scheduler does) nor read streams (the stream source
// does).
package delivery
