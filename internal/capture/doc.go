// Package capture holds the receivers `pulse dev` and the end-to-end tests point Pulse at: a
// webhook receiver that checks each delivery's Standard Webhooks signature, counts deliveries
// per notification and can be told to fail, so a run on a laptop needs no accounts anywhere.
package capture
