// Command cluster-check is the Go half of make cluster-check (scripts/cluster-check.sh):
//
//	cluster-check apply [-strict] PATH...     apply manifests in order, ko:// images fixed
//	cluster-check webhooks [-timeout D] NS... wait for the webhooks served from namespaces NS
//	cluster-check check [-timeout D] PATH...  check what Knative reconciled from the manifests
//	cluster-check image IMPORTPATH            print the fixed reference of ko://IMPORTPATH
//
// Each reads the cluster from $KUBECONFIG. Exit status 1 means the cluster refused something,
// reconciled it other than declared, or did not get there in time; 2, a usage error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/pulse-knative/pulse/config/validate/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		args = []string{"help"}
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	strict := fs.Bool("strict", false, "apply: a warning from the API server or a webhook is an error")
	timeout := fs.Duration("timeout", 3*time.Minute, "webhooks, check: how long to wait")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: cluster-check apply [-strict] PATH... | webhooks [-timeout D] NAMESPACE... | check [-timeout D] PATH... | image IMPORTPATH")
		return 2
	}
	if args[0] == "image" {
		fmt.Println(cluster.FixedImage(fs.Arg(0)))
		return 0
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	switch args[0] {
	case "apply":
		docs, err := cluster.ReadManifests(fs.Args()...)
		if err != nil {
			return fail(err)
		}
		a, err := cluster.NewApplier(cfg)
		if err != nil {
			return fail(err)
		}
		if err := a.Apply(context.WithoutCancel(ctx), docs, *strict); err != nil {
			return fail(err)
		}
		fmt.Printf("applied %d objects from %v\n", len(docs), fs.Args())
		return 0
	case "webhooks", "check":
		c, err := cluster.NewChecker(cfg)
		if err != nil {
			return fail(err)
		}
		if args[0] == "webhooks" {
			if err := c.WaitWebhooks(ctx, fs.Args()...); err != nil {
				return fail(err)
			}
			return 0
		}
		docs, err := cluster.ReadManifests(fs.Args()...)
		if err != nil {
			return fail(err)
		}
		return report(c.Check(ctx, docs))
	}
	fmt.Fprintf(os.Stderr, "cluster-check: unknown command %q\n", args[0])
	return 2
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "cluster-check:", err)
	return 1
}

// report prints one line per checked object, with the reason under each failure.
func report(results []cluster.Result) int {
	code := 0
	for _, r := range results {
		if r.Err != nil {
			fmt.Printf("FAIL %s: %s\n  %v\n", r.Object, r.Found, r.Err)
			code = 1
			continue
		}
		fmt.Printf("ok   %s: %s\n", r.Object, r.Found)
	}
	return code
}
