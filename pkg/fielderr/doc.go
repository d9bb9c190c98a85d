// Package fielderr describes what is wrong with the fields of a request: each problem has a
// message, the paths of the fields it concerns (data.to, metadata[tier], [3].data.channel) and
// optional details. An *Error collects any number of them and is what ceserver answers with a
// 400 that names every bad field.
//
// The messages and paths read like Knative's apis.FieldError, which Pulse used before; this
// package keeps that format without Kubernetes' API machinery in every function binary.
package fielderr
