package push_test

import (
	"fmt"

	"github.com/pulse-knative/pulse/pkg/channel/push"
)

// An account URL, as PULSE_PUSH_ACCOUNTS carries it, names the mounted service-account key;
// push.New reads it.
func ExampleParseURL() {
	cfg, err := push.ParseURL("fcm://?credentials_file=/var/run/secrets/pulse/fcm/key.json&project=my-project")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.CredentialsFile, cfg.Project)

	_, err = push.ParseURL("fcm://?credentials_file=/k.json&private_key=oops")
	fmt.Println(err)
	// Output:
	// /var/run/secrets/pulse/fcm/key.json my-project
	// parse fcm account url: unknown parameter "private_key"
}
