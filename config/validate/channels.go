package validate

import (
	"fmt"
	"strings"
)

// accountVars are the deliver functions' account variables, by the channel they configure.
var accountVars = map[string]string{"email": "PULSE_EMAIL_ACCOUNTS", "sms": "PULSE_SMS_ACCOUNTS", "push": "PULSE_PUSH_ACCOUNTS"}

// Channels checks that ingest accepts only channels the deliver functions can send: every
// channel in ingest's PULSE_CHANNELS but webhook has its account variable set in every
// deliver container, and an account variable whose value the manifests show (a literal, or a
// Secret template's non-empty placeholder) is for a channel ingest accepts.
func (c Checker) Channels(s *Set) []Problem {
	var out []Problem
	var ingest, deliver []functionContainer
	var accepted []map[string]bool
	for fc := range s.functionContainers() {
		switch fc.fn.Config {
		case "Ingest":
			v, known := c.value(fc.fn, fc.env, "PULSE_CHANNELS")
			if !known {
				continue
			}
			ingest = append(ingest, fc)
			set := map[string]bool{}
			for _, ch := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
				set[ch] = true
			}
			accepted = append(accepted, set)
		case "Deliver":
			deliver = append(deliver, fc)
		}
	}
	for i, in := range ingest {
		for _, ch := range sortedKeys(accepted[i]) {
			name, ok := accountVars[ch]
			if !ok {
				continue
			}
			for _, d := range deliver {
				if _, set := d.env[name]; !set {
					out = append(out, Problem{in.where(), fmt.Sprintf("PULSE_CHANNELS accepts %s, but %s does not set %s", ch, d.where(), name)})
				}
			}
		}
		for _, d := range deliver {
			for _, ch := range sortedKeys(accountVars) {
				if v, set := d.env[accountVars[ch]]; set && strings.TrimSpace(v.Value) != "" && !accepted[i][ch] {
					out = append(out, Problem{in.where(), fmt.Sprintf("%s configures %s accounts (%s), but PULSE_CHANNELS does not accept %s", d.where(), ch, accountVars[ch], ch)})
				}
			}
		}
	}
	return out
}
