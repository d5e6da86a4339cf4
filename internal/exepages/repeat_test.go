package exepages

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// script drives repeat: faults returns counts in order, and sleep records
// each duration and stops repeat once the counts are used up. The first
// count is the baseline passed to repeat.
type script struct {
	counts []uint64
	calls  int // faults calls so far
	sleeps []time.Duration
	drops  []int // the faults call after which each drop came
}

func (s *script) faults() (uint64, error) {
	n := s.counts[s.calls]
	s.calls++
	return n, nil
}

func (s *script) sleep(d time.Duration) bool {
	s.sleeps = append(s.sleeps, d)
	return s.calls < len(s.counts)
}

func (s *script) drop() error {
	s.drops = append(s.drops, s.calls)
	return nil
}

func TestRepeat(t *testing.T) {
	const (
		first  = 250 * time.Millisecond
		second = 500 * time.Millisecond
		settle = 10 * time.Millisecond
	)
	sched := schedule{first: first, max: time.Second, settle: settle}
	for _, tc := range []struct {
		name      string
		counts    []uint64        // fault counts: the baseline, then at each check or settle
		wantDrops []int           // faults calls after which repeat dropped
		wantSleep []time.Duration // every sleep, the last one ending repeat
	}{
		{
			name:      "no faults, the interval doubles up to max",
			counts:    []uint64{5, 5, 5, 5, 5},
			wantSleep: []time.Duration{first, second, time.Second, time.Second, time.Second},
		},
		{
			name:      "faults after the start drop at the first check",
			counts:    []uint64{5, 9, 12, 12},
			wantDrops: []int{2},
			wantSleep: []time.Duration{first, settle, second, time.Second},
		},
		{
			name:      "faults while settling are the new baseline",
			counts:    []uint64{5, 9, 30, 30, 30},
			wantDrops: []int{2},
			wantSleep: []time.Duration{first, settle, second, time.Second, time.Second},
		},
		{
			name:      "faults after settling drop again",
			counts:    []uint64{5, 9, 30, 31, 40},
			wantDrops: []int{2, 4},
			wantSleep: []time.Duration{first, settle, second, settle, time.Second},
		},
		{
			name:      "the interval keeps doubling across drops",
			counts:    []uint64{5, 5, 6, 8, 8, 9, 11},
			wantDrops: []int{3, 6},
			wantSleep: []time.Duration{first, second, settle, time.Second, time.Second, settle, time.Second},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{counts: tc.counts, calls: 1}
			if err := repeat(sched, tc.counts[0], s.sleep, s.faults, s.drop); err != nil {
				t.Fatalf("repeat: %v", err)
			}
			if !slices.Equal(s.drops, tc.wantDrops) {
				t.Errorf("drops after faults calls %v, want %v", s.drops, tc.wantDrops)
			}
			if !slices.Equal(s.sleeps, tc.wantSleep) {
				t.Errorf("sleeps %v, want %v", s.sleeps, tc.wantSleep)
			}
		})
	}
}

func TestRepeatErrors(t *testing.T) {
	sched := schedule{first: time.Millisecond, max: time.Millisecond, settle: time.Millisecond}
	errFaults := errors.New("getrusage failed")
	errDrop := errors.New("madvise failed")
	forever := func(time.Duration) bool { return true }

	for _, tc := range []struct {
		name      string
		failCall  int   // the faults call that fails, 0 for none
		dropErr   error // what drop returns
		want      error
		wantDrops int
	}{
		{name: "faults at the first check", failCall: 1, want: errFaults},
		{name: "faults after settling", failCall: 2, want: errFaults, wantDrops: 1},
		{name: "drop", dropErr: errDrop, want: errDrop, wantDrops: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, drops := 0, 0
			faults := func() (uint64, error) {
				calls++
				if calls == tc.failCall {
					return 0, errFaults
				}
				return uint64(calls), nil // a new fault at every check
			}
			drop := func() error {
				drops++
				return tc.dropErr
			}
			if err := repeat(sched, 0, forever, faults, drop); !errors.Is(err, tc.want) {
				t.Errorf("repeat = %v, want %v", err, tc.want)
			}
			if drops != tc.wantDrops {
				t.Errorf("repeat dropped %d times, want %d", drops, tc.wantDrops)
			}
		})
	}
}

func TestSleeperStopsAfterContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	sleep, stop := sleeper(ctx)
	defer stop()
	if !sleep(time.Millisecond) {
		t.Fatal("sleep returned false before the context ended")
	}
	cancel()
	// context.AfterFunc runs its function in a goroutine of its own.
	deadline := time.Now().Add(5 * time.Second)
	for sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("sleep still returns true 5 s after the context ended")
		}
	}
}
