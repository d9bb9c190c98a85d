// Package config owns Pulse's configuration: one envconfig struct per function, built from
// shared blocks. Every field has a PULSE_ name (or the name Knative sets, such as PORT and
// K_SINK), a comment and a default or required tag. The same names appear in
// config/*.yaml, in the README's configuration table and in `pulse dev`.
//
// The package reads the environment and nothing else; it does not open connections.
package config
