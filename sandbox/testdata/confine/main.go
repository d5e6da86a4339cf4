// Command confine starts threads that stay idle, like a monitor's vCPU
// threads, calls sandbox.Confine, and prints each thread's capability sets
// and no_new_privs before and after, one line per thread:
//
//	before TID CapInh=... CapPrm=... CapEff=... CapAmb=... NoNewPrivs=...
//
// TestConfineEveryThread builds it with and without cgo, because psx,
// which Confine uses, has an implementation for each.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"

	"github.com/osvm-project/osvm/sandbox"
)

// statusFields are the lines of /proc/PID/task/TID/status that Confine
// changes.
var statusFields = regexp.MustCompile(`(?m)^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs):\s*(\S+)$`)

func main() {
	for range 4 {
		go func() {
			runtime.LockOSThread()
			select {}
		}()
	}
	for countThreads() < 5 {
		runtime.Gosched()
	}

	printThreads("before")
	policy := &sandbox.LandlockPolicy{Paths: []sandbox.PathRule{{Path: "/", Access: sandbox.AccessRead}}}
	if err := sandbox.Confine(policy); err != nil {
		fmt.Println("Confine:", err)
		os.Exit(1)
	}
	printThreads("after")
}

func countThreads() int {
	tasks, _ := filepath.Glob("/proc/self/task/*")
	return len(tasks)
}

func printThreads(when string) {
	tasks, _ := filepath.Glob("/proc/self/task/*")
	for _, task := range tasks {
		status, err := os.ReadFile(filepath.Join(task, "status"))
		if err != nil {
			fmt.Println(when, filepath.Base(task), "unreadable:", err)
			continue
		}
		line := when + " " + filepath.Base(task)
		for _, m := range statusFields.FindAllStringSubmatch(string(status), -1) {
			line += " " + m[1] + "=" + m[2]
		}
		fmt.Println(line)
	}
}
