package exepages

import (
	"context"
	"sync/atomic"
	"time"
)

// settleTime is how long Repeat waits after a drop before it takes the
// fault count that later checks compare with. The faults in that time are
// mostly Repeat's own: the return from the drop, and the timer and
// scheduler code of its sleep, which the drop has just released too.
// Without the wait, each drop would cause the next one.
const settleTime = 10 * time.Millisecond

// schedule sets the times of repeat's checks.
type schedule struct {
	first  time.Duration // from the start to the first check
	max    time.Duration // bound of the interval, which doubles after each check
	settle time.Duration // from a drop to the fault count that later checks compare with
}

// repeat calls drop whenever faults has grown since baseline, the count
// at the end of the caller's last drop, or since the count taken s.settle
// after one of its own drops. It checks at the times of s and waits with
// sleep, until sleep returns false. It returns nil then, and the first
// error of faults or drop.
func repeat(s schedule, baseline uint64, sleep func(time.Duration) bool, faults func() (uint64, error), drop func() error) error {
	for interval := s.first; sleep(interval); interval = min(2*interval, s.max) {
		n, err := faults()
		if err != nil {
			return err
		}
		if n == baseline {
			continue
		}
		if err := drop(); err != nil {
			return err
		}
		if !sleep(s.settle) {
			return nil
		}
		if baseline, err = faults(); err != nil {
			return err
		}
	}
	return nil
}

// sleeper returns a sleep function for repeat that reports false once ctx
// has ended, after the full sleep, and a function that releases ctx's
// watch. It uses time.Sleep rather than a timer and a select on
// ctx.Done(), because time.Sleep runs only runtime code, which a Go
// program keeps resident anyway. Package time's timer code kept another
// 64 KiB fault-around window of osvm-launch's text resident. The cost is
// that repeat returns up to one interval late.
func sleeper(ctx context.Context) (sleep func(time.Duration) bool, stop func()) {
	var ended atomic.Bool
	stopWatch := context.AfterFunc(ctx, func() { ended.Store(true) })
	sleep = func(d time.Duration) bool {
		time.Sleep(d)
		return !ended.Load()
	}
	return sleep, func() { stopWatch() }
}
