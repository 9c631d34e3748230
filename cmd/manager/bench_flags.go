//go:build bench

package main

import "flag"

// The bench build (go build -tags bench; make bench builds the operator so)
// has flags that only measure: they are not in the operator's flag set.
func init() {
	flag.BoolVar(&cacheEverything, "cache-everything", false, "Cache every Secret, Deployment, Job, ... of the cluster with managed fields, "+
		"as controller-runtime does by default, to measure what the selective cache saves.")
}
