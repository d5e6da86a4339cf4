package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	"github.com/osvm-project/osvm/hermit"
	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/exepages"
	"github.com/osvm-project/osvm/internal/plan"
	"github.com/osvm-project/osvm/sandbox"
)

// exitGuest is the exit status when the guest stops without an exit
// hypercall: a triple fault, an instruction KVM cannot run, a bad
// hypercall. The journal has the error and a register dump.
const exitGuest = 4

// guestMemoryAlignment is the granularity of guest memory: 2 MiB pages.
const guestMemoryAlignment = 2 << 20

// bootUnikernel boots the component's Hermit image and returns the guest's
// exit status. The kernel's log and the guest's standard output go to
// stdout, and so to the journal in a unit.
func bootUnikernel(p *plan.Plan) int {
	uk := &p.Component.Unikernel
	fail := func(status int, format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "osvm-launch: component %s: "+format+"\n", append([]any{p.Component.Name}, args...)...)
		return status
	}

	limitHeapGrowth()
	machine, err := hermit.BootFile(uk.Image, guestConfig(p))
	if err != nil {
		return fail(exitSandbox, "%v", err)
	}
	defer machine.Close()

	// The Landlock ruleset below lacks /proc, so the smaps file that the
	// trimming reads is opened before it.
	pages, err := exepages.Open()
	if err != nil {
		warn(p, "the monitor's resident memory stays high: %v", err)
	}

	// /dev/kvm is open and the image loaded: from here on the monitor needs
	// only the mounts' folders. Confine applies to every thread, the vCPU
	// threads that BootFile started among them.
	if err := sandbox.Confine(monitorPolicy(p)); err != nil {
		return fail(exitSandbox, "confine the monitor: %v", err)
	}

	// systemd stops a unit with SIGTERM; the guest then ends with it.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if pages != nil {
		trimExecutablePages(ctx, p, pages)
	}
	code, err := machine.Run(ctx)
	switch {
	case err == nil:
		return code & 0xff
	case errors.Is(err, context.Canceled):
		return fail(128+int(syscall.SIGTERM), "stopped by a signal")
	default:
		return fail(exitGuest, "guest stopped: %v", err)
	}
}

// monitorGCPercent is the monitor's GOGC. Its live heap stays below 1 MiB,
// but hypercalls leave garbage, and the heap grows to the collector's goal,
// at least 4 MiB × GOGC/100, before a collection frees it. 50 halves that
// growth at the cost of a collection, about 0.5 ms, per MiB of garbage. A
// lower value would run the collector during boot already, which adds its
// own memory, about 0.4 MiB, to every guest, even an idle one.
const monitorGCPercent = 50

// limitHeapGrowth sets GOGC to monitorGCPercent unless the environment sets
// GOGC.
func limitHeapGrowth() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(monitorGCPercent)
	}
}

// Times of the checks after which the monitor releases its executable's
// pages: the first follows setup by firstTrimCheck, which covers a Hermit
// kernel's boot (uhyve's hello_world exits after 0.2 s on the PVM host of
// docs/benchmarks.md), and the interval doubles up to maxTrimInterval. A
// check reads the process's fault count. A drop reads /proc/self/smaps and
// zaps the page-table entries in about 0.5 ms on that host, and the pages
// still in use come back with minor faults. Dropping right after setup
// instead added about 1 ms to the boot of the test kernel, which a guest
// that exits within 0.25 s now does not pay.
const (
	firstTrimCheck  = 250 * time.Millisecond
	maxTrimInterval = time.Minute
)

// trimExecutablePages starts a goroutine that releases the pages of
// osvm-launch's text and read-only data that setup touched, which a guest
// never needs again. The goroutine releases them again whenever page
// faults show that pages came back, until ctx ends or the process exits,
// and closes pages then. It reports a failure on standard error, and the
// guest runs on.
func trimExecutablePages(ctx context.Context, p *plan.Plan, pages *exepages.Dropper) {
	go func() {
		defer pages.Close()
		if err := pages.Repeat(ctx, firstTrimCheck, maxTrimInterval); err != nil {
			warn(p, "the monitor's resident memory may stay high: %v", err)
		}
	}()
}

// warn reports a problem that leaves the guest running on standard error,
// which a unit sends to the journal.
func warn(p *plan.Plan, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "osvm-launch: component %s: warning: "+format+"\n", append([]any{p.Component.Name}, args...)...)
}

// guestConfig returns the virtual machine a plan describes.
func guestConfig(p *plan.Plan) hermit.Config {
	uk := &p.Component.Unikernel
	memory := p.Component.Resources.MemoryMax
	if memory == 0 {
		memory = config.DefaultUnikernelMemory
	}
	memory = (memory + guestMemoryAlignment - 1) / guestMemoryAlignment * guestMemoryAlignment

	var env []string
	for _, k := range slices.Sorted(maps.Keys(uk.Environment)) {
		env = append(env, k+"="+uk.Environment[k])
	}
	mounts := map[string]hermit.Mount{}
	for _, m := range uk.Mounts {
		mounts[m.Guest] = hermit.Mount{Dir: m.Host, Writable: m.Writable}
	}
	return hermit.Config{
		Memory:  memory,
		CPUs:    uk.CPUs,
		Program: filepath.Base(uk.Image),
		Args:    uk.Args,
		Env:     env,
		Mounts:  mounts,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
	}
}

// monitorPolicy is the Landlock ruleset of the monitor once the guest is
// loaded: the mounts' folders, read-only unless writable, no TCP.
func monitorPolicy(p *plan.Plan) *sandbox.LandlockPolicy {
	policy := &sandbox.LandlockPolicy{
		Required: p.Component.Sandbox.Landlock != config.LandlockBestEffort,
		MinABI:   max(sandbox.ABINetwork, p.Component.Sandbox.LandlockMinABI),
		Scoped:   true,
	}
	for _, m := range p.Component.Unikernel.Mounts {
		access := sandbox.AccessRead
		if m.Writable {
			access |= sandbox.AccessWrite
		}
		policy.Paths = append(policy.Paths, sandbox.PathRule{Path: m.Host, Access: access})
	}
	return policy
}
