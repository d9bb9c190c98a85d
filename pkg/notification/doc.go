// Package notification owns what a notification is: its channels, priorities and states, the
// request an upstream sends to ask for one, and the validation of that request.
//
// It does no I/O; storing, queueing and sending live in store, queue and channel.
package notification
