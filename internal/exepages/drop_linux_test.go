package exepages

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exeResident returns the Rss of the test binary's mappings in
// /proc/self/smaps, read-only and writable apart. It parses the file
// itself instead of with parseSmaps, and finds the binary by path.
func exeResident(t *testing.T) (readOnly, writable uint64) {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var path, perms string
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") {
			path, perms = "", fields[1]
			if len(fields) >= 6 {
				path = strings.Join(fields[5:], " ")
			}
			continue
		}
		if fields[0] != "Rss:" || path != exe {
			continue
		}
		kib, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			t.Fatalf("smaps line %q: %v", scanner.Text(), err)
		}
		if strings.Contains(perms, "w") {
			writable += kib << 10
		} else {
			readOnly += kib << 10
		}
	}
	if readOnly == 0 {
		t.Fatalf("/proc/self/smaps shows no resident read-only mapping of %s", exe)
	}
	return readOnly, writable
}

// sentinel is written before a drop and read after it: a writable mapping
// keeps its contents.
var sentinel = []byte("unchanged")

// exercise runs code of several packages and checks its results, which
// needs their text and read-only data. It returns an error when a result
// is wrong.
func exercise() error {
	sum := sha256.Sum256([]byte("exepages"))
	if got, want := hex.EncodeToString(sum[:]), "233e0457facf80f2637edd83530667ca9e11ac1d1e86ca9b36c355b9831a4900"; got != want {
		return fmt.Errorf("sha256 of %q is %s, want %s", "exepages", got, want)
	}
	var v struct{ A []int }
	if err := json.Unmarshal([]byte(`{"A":[1,2,3]}`), &v); err != nil || fmt.Sprint(v.A) != "[1 2 3]" {
		return fmt.Errorf("json decoding returned %v and error %v, want [1 2 3]", v.A, err)
	}
	if m := regexp.MustCompile(`^r-?x?p$`).FindString("r-xp"); m != "r-xp" {
		return fmt.Errorf("regexp match %q, want r-xp", m)
	}
	return nil
}

func TestDropReleasesReadOnlyPages(t *testing.T) {
	if err := exercise(); err != nil {
		t.Fatal(err)
	}
	copy(sentinel, "written!!")
	d, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	before, writableBefore := exeResident(t)
	dropped, err := d.Drop()
	if err != nil {
		t.Fatalf("Drop: %v", err)
	}
	after, writableAfter := exeResident(t)
	t.Logf("read-only Rss %d KiB before, %d KiB after (Drop saw %d KiB in %d mappings); writable Rss %d KiB, %d KiB",
		before>>10, after>>10, dropped.Resident>>10, dropped.Mappings, writableBefore>>10, writableAfter>>10)

	// Go binaries have a text and a read-only data segment.
	if dropped.Mappings < 2 {
		t.Errorf("Drop released %d mappings, want at least 2 (text and read-only data)", dropped.Mappings)
	}
	if dropped.Resident < before/2 {
		t.Errorf("Drop counted %d KiB resident, want about the %d KiB counted before", dropped.Resident>>10, before>>10)
	}
	// Reading smaps for the check brings back the pages of the code that
	// reads it, in 64 KiB fault-around windows: about 1.7 of 3.1 MiB in
	// this test binary, built by Go 1.26.
	if after > before*3/4 {
		t.Errorf("read-only Rss of the executable went from %d KiB to %d KiB, want below three quarters", before>>10, after>>10)
	}
	if writableAfter < writableBefore {
		t.Errorf("writable Rss of the executable went from %d KiB to %d KiB, want no decrease", writableBefore>>10, writableAfter>>10)
	}
	if string(sentinel) != "written!!" {
		t.Errorf("package variable reads %q after the drop, want %q", sentinel, "written!!")
	}
	if err := exercise(); err != nil {
		t.Errorf("after the drop: %v", err)
	}
}

func TestDropAllocatesNothingLater(t *testing.T) {
	d, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Drop(); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := d.Drop(); err != nil {
			t.Error(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Drop made %v allocations after the first call, want 0", allocs)
	}
}

func TestRepeatDropsAfterFaults(t *testing.T) {
	d, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Drop(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Repeat(ctx, 20*time.Millisecond, 40*time.Millisecond) }()

	// exercise faults pages back in, and Repeat's first check, 20 ms
	// after its start, must release them again.
	if err := exercise(); err != nil {
		t.Fatal(err)
	}
	touched, _ := exeResident(t)
	time.Sleep(300 * time.Millisecond)
	settled, _ := exeResident(t)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Repeat: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Repeat still runs 5 s after its context ended")
	}

	t.Logf("read-only Rss %d KiB after exercise, %d KiB later", touched>>10, settled>>10)
	if settled >= touched {
		t.Errorf("read-only Rss of the executable went from %d KiB to %d KiB while Repeat ran, want a decrease", touched>>10, settled>>10)
	}
	if err := exercise(); err != nil {
		t.Errorf("after Repeat: %v", err)
	}
}

func TestRepeatRejectsBadIntervals(t *testing.T) {
	d, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, tt := range []struct{ first, max time.Duration }{{0, time.Second}, {-time.Second, time.Second}, {time.Second, time.Millisecond}} {
		if err := d.Repeat(context.Background(), tt.first, tt.max); err == nil {
			t.Errorf("Repeat(first %v, max %v) = nil, want an error instead of a busy loop", tt.first, tt.max)
		}
	}
}
