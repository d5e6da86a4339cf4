package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// activeWatcher reports when units of the sandbox's systemd become active,
// from systemd's own PropertiesChanged signals, so that both sides of a
// comparison are timed by the same observer.
type activeWatcher struct {
	conn    *sddbus.Conn
	updates chan *sddbus.PropertiesUpdate
}

func newActiveWatcher(b *testing.B, e *env) *activeWatcher {
	b.Helper()
	conn, err := sddbus.NewConnection(func() (*dbus.Conn, error) {
		return dbus.Connect(e.sb.BusAddress())
	})
	if err != nil {
		b.Fatalf("connect to the sandbox's systemd: %v", err)
	}
	b.Cleanup(conn.Close)
	w := &activeWatcher{conn: conn, updates: make(chan *sddbus.PropertiesUpdate, 1024)}
	conn.SetPropertiesSubscriber(w.updates, make(chan error, 1))
	if err := conn.Subscribe(); err != nil {
		b.Fatal(err)
	}
	return w
}

// waitActive returns when unit reports ActiveState=active.
func (w *activeWatcher) waitActive(b *testing.B, unit string) time.Time {
	b.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case u := <-w.updates:
			if u.UnitName == unit && u.Changed["ActiveState"].Value() == "active" {
				return time.Now()
			}
		case <-timeout:
			b.Fatalf("%s did not become active within %v", unit, waitTimeout)
		}
	}
}

// BenchmarkStartLatency measures the time from a component file appearing
// in the folder to its unit being active, and the time from running
// systemd-run with the same command to its unit being active, in the same
// sandbox, and reports their medians and ratio. make bench runs it with
// -benchtime 20x.
func BenchmarkStartLatency(b *testing.B) {
	e := newEnv(b)
	w := newActiveWatcher(b, e)
	const component = "[exec]\ncommand = [\"/bin/sleep\", \"infinity\"]\n"

	var osvm, bare []time.Duration
	for i := 0; b.Loop(); i++ {
		// osvm: a file renamed into the folder, as configuration tools write.
		name := fmt.Sprintf("bench%d", i)
		tmp := filepath.Join(e.configDir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(component), 0o644); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := os.Rename(tmp, filepath.Join(e.configDir, name+".toml")); err != nil {
			b.Fatal(err)
		}
		osvm = append(osvm, w.waitActive(b, "osvm-"+name+".service").Sub(start))

		// systemd-run: the shell inside the sandbox is started first and
		// waits for a line, so the time counts systemd-run's own work and
		// not the harness's nsenter.
		unit := fmt.Sprintf("bare%d.service", i)
		cmd := e.command(context.Background(), "sh", "-c", "read line && exec systemd-run --quiet --unit="+unit+" /bin/sleep infinity")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // let nsenter and sh reach the read
		start = time.Now()
		io.WriteString(stdin, "go\n")
		bare = append(bare, w.waitActive(b, unit).Sub(start))
		bufio.NewReader(stdout).ReadString('\n')
		if err := cmd.Wait(); err != nil {
			b.Fatalf("systemd-run: %v", err)
		}

		b.StopTimer()
		os.Remove(filepath.Join(e.configDir, name+".toml"))
		e.output("systemctl", "stop", unit)
		b.StartTimer()
	}

	osvmMedian, bareMedian := median(osvm), median(bare)
	b.ReportMetric(float64(osvmMedian.Microseconds())/1000, "osvm-ms")
	b.ReportMetric(float64(bareMedian.Microseconds())/1000, "systemd-run-ms")
	b.ReportMetric(float64(osvmMedian)/float64(bareMedian), "ratio")
	b.Logf("file to active unit: median %v over %d runs; systemd-run to active unit: median %v; ratio %.2f",
		osvmMedian, len(osvm), bareMedian, float64(osvmMedian)/float64(bareMedian))
}

func median(values []time.Duration) time.Duration {
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}
