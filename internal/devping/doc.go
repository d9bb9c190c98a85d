// Package devping plays the cluster's PingSources for `pulse dev`: it reads them from the
// config/ manifests and POSTs the ping events Knative would send, on their schedules,
// to the local cron function.
//
// It is dev tooling only: the production cron function is called by real PingSources and does
// not link this package. What the jobs do lives in pkg/scheduler.
package devping
