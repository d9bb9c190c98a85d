// Package channeltest holds what the tests of the channel providers share: a canned HTTP
// answer, a provider built under test with a stopped clock, and the checks that every account
// URL parser and every provider error parser must pass.
//
// It owns no production behaviour; only the channel packages' tests import it.
package channeltest
