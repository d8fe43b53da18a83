package history

import "golang.org/x/sys/unix"

// Now is CLOCK_MONOTONIC in nanoseconds: the same clock as Node's
// process.hrtime.bigint(). Go's time.Now() also reads CLOCK_MONOTONIC, but
// only exposes it relative to this process's start, which another process
// cannot compare with.
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err) // CLOCK_MONOTONIC exists on every Linux
	}
	return ts.Nano()
}
