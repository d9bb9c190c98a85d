// Package config owns Pulse's configuration: one envconfig struct per function, built from
// shared blocks. Every field has a PULSE_ name (or the name Knative sets, such as PORT and
// K_SINK), a comment and a default or required tag. The same names appear in
// config/*.yaml, in the table of docs/configuration.md and in `pulse dev`. Fields that hold
// secrets (tokens, keys, URLs that may carry passwords) are tagged secret:"true", and no error
// of Load quotes their values.
//
// The package reads the environment and nothing else; it does not open connections.
package config
