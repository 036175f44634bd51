//go:build linux

package workload_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/schedkit/schedkit/internal/workload"
)

// Run a small workload and tell a stall apart from other failures.
func ExampleRun() {
	rep, err := workload.Run(context.Background(), workload.Config{
		Spinners:   4,
		SpinWork:   100,
		RoundTrips: 500,
		Deadline:   10 * time.Second,
	})
	var inc *workload.IncompleteError
	if errors.As(err, &inc) {
		// Some thread got too little CPU time, or was never woken.
		for _, t := range inc.Unfinished {
			fmt.Printf("starved: %s %d did %d/%d\n", t.Kind, t.ID, t.Done, t.Want)
		}
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rep)
}
