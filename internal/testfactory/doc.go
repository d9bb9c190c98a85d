// Package testfactory builds the fixtures tests of several packages need: a migrated store in
// a schema of the test's own, and notifications in a given state, moved there through the
// store's own transitions so that every column is as the pipeline would leave it.
//
// It owns no behaviour of Pulse; the datastore access itself is pulsetest's.
package testfactory
