package latency

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"
)

// The package's sentinel errors for bad input. Errors wrap them with what
// was wrong and how to fix it; match them with errors.Is.
var (
	// ErrInvalid is wrapped by every error about the input of Start,
	// NewHistogram and ParseBounds: a cgroup path that does not name a
	// cgroup v2 directory, bucket bounds that are not strictly
	// increasing, a negative threshold or size. The message names the
	// value and how to fix it.
	ErrInvalid = errors.New("invalid input")
	// ErrTooBig is wrapped by the errors about more bucket bounds than
	// the BPF histogram holds (MaxBounds).
	ErrTooBig = errors.New("too big")
)

// optErr returns an error wrapping ErrInvalid whose message, after the
// package and the sentinel, names the value and how to fix it.
func optErr(format string, args ...any) error {
	return fmt.Errorf("latency: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// MaxBounds is the largest number of bucket bounds a histogram can have
// (SK_LAT_MAX_BOUNDS in scxkit/latency.h); it then has MaxBounds+1
// buckets, the last for delays above the last bound.
// TestConstantsMatchBPF checks it against the compiler's value.
const MaxBounds = 64

// Options configures Start. The zero value (or a nil *Options) profiles
// every cgroup with Log2Bounds and no outlier stream.
type Options struct {
	// Cgroups selects the cgroups to profile, as paths either in the
	// cgroup v2 hierarchy ("/system.slice", as /proc/PID/cgroup shows
	// them) or in the file system under the cgroup2 mount
	// ("/sys/fs/cgroup/unified/system.slice"). Only tasks directly in a
	// selected cgroup count, not those of its descendants. Empty: every
	// cgroup, up to MaxCgroups of them.
	Cgroups []string

	// Bounds are the upper bounds of the queueing-delay histogram's
	// buckets, strictly increasing, positive, at most MaxBounds of them;
	// one more bucket counts the delays above the last. Nil: Log2Bounds().
	Bounds []time.Duration

	// OutlierThreshold: every wait at least this long is sent on the
	// Outliers channel, with its task and cgroup. 0: no outlier stream.
	OutlierThreshold time.Duration

	// OutlierBuffer is the capacity of the Outliers channel; outliers
	// that find it full are dropped and counted (Profiler.OutliersDropped).
	// 0: 1024.
	OutlierBuffer int

	// RingBufferSize is the size in bytes of the BPF ring buffer that
	// carries outliers to Go, a power of two and a multiple of the page
	// size. 0: 256 KiB, about 2600 outliers.
	RingBufferSize int

	// MaxCgroups bounds how many cgroups are counted when Cgroups is
	// empty; cgroups beyond it are not counted (Read says how many
	// were turned away). 0: 4096.
	MaxCgroups int

	// Logger receives debug messages about loading and reading. Nil:
	// slog.Default().
	Logger *slog.Logger
}

const (
	defaultOutlierBuffer  = 1024
	defaultRingBufferSize = 256 << 10
	defaultMaxCgroups     = 4096
)

// Log2Bounds returns the default bucket bounds: powers of two from 1 µs to
// 2^25 µs (about 33.5 s), as runqlat's log2 slots, 26 bounds.
func Log2Bounds() []time.Duration {
	b := make([]time.Duration, 26)
	for i := range b {
		b[i] = time.Microsecond << i
	}
	return b
}

// checkBounds reports whether b can be a histogram's bounds.
func checkBounds(b []time.Duration) error {
	switch {
	case len(b) == 0:
		return fmt.Errorf("latency: no bucket bounds: %w: give at least one, or nil for Log2Bounds", ErrInvalid)
	case len(b) > MaxBounds:
		return tooManyBounds(len(b))
	}
	for i, d := range b {
		if d <= 0 {
			return fmt.Errorf("latency: bucket bound %d is %v: %w: bounds must be positive durations", i, d, ErrInvalid)
		}
		if i > 0 && d <= b[i-1] {
			return fmt.Errorf("latency: bucket bound %d (%v) is not above bound %d (%v): %w: bounds must be strictly increasing", i, d, i-1, b[i-1], ErrInvalid)
		}
	}
	return nil
}

// tooManyBounds is the error for n > MaxBounds bucket bounds.
func tooManyBounds(n int) error {
	return fmt.Errorf("latency: %d bucket bounds: %w: at most %d fit the BPF histogram (SK_LAT_MAX_BOUNDS); give fewer", n, ErrTooBig, MaxBounds)
}

// ParseBounds parses histogram bucket bounds written as a comma-separated
// list of Go durations ("50us,1ms,10ms") or as "log2" for Log2Bounds. Blanks
// around items are ignored. The result satisfies Options.Bounds. The error
// wraps ErrInvalid, or ErrTooBig for more than MaxBounds bounds.
func ParseBounds(s string) ([]time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "log2" {
		return Log2Bounds(), nil
	}
	if s == "" {
		return nil, fmt.Errorf("latency: empty bucket bounds: %w: give durations like 50us,1ms,10ms, or log2", ErrInvalid)
	}
	items := strings.Split(s, ",")
	if len(items) > MaxBounds {
		return nil, tooManyBounds(len(items))
	}
	b := make([]time.Duration, 0, len(items))
	for i, item := range items {
		item = strings.TrimSpace(item)
		d, err := time.ParseDuration(item)
		if err != nil {
			return nil, fmt.Errorf("latency: bucket bound %d %q: %w: %v: write a duration like 250us or 2ms", i, item, ErrInvalid, err)
		}
		b = append(b, d)
	}
	if err := checkBounds(b); err != nil {
		return nil, err
	}
	return b, nil
}

// withDefaults checks o and returns a copy with defaults filled in.
func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Bounds == nil {
		r.Bounds = Log2Bounds()
	} else {
		if err := checkBounds(r.Bounds); err != nil {
			return r, err
		}
		r.Bounds = append([]time.Duration(nil), r.Bounds...)
	}
	if r.OutlierThreshold < 0 {
		return r, fmt.Errorf("latency: OutlierThreshold is %v: %w: give a positive duration, or 0 for no outliers", r.OutlierThreshold, ErrInvalid)
	}
	if r.OutlierBuffer < 0 {
		return r, fmt.Errorf("latency: OutlierBuffer is %d: %w: give a positive capacity, or 0 for %d", r.OutlierBuffer, ErrInvalid, defaultOutlierBuffer)
	}
	if r.OutlierBuffer == 0 {
		r.OutlierBuffer = defaultOutlierBuffer
	}
	if r.RingBufferSize == 0 {
		r.RingBufferSize = defaultRingBufferSize
	}
	if n := r.RingBufferSize; n < 4096 || n&(n-1) != 0 || n > math.MaxUint32/2 {
		return r, fmt.Errorf("latency: RingBufferSize is %d: %w: give a power of two of at least 4096 bytes, or 0 for %d", n, ErrInvalid, defaultRingBufferSize)
	}
	if r.MaxCgroups < 0 {
		return r, fmt.Errorf("latency: MaxCgroups is %d: %w: give a positive number, or 0 for %d", r.MaxCgroups, ErrInvalid, defaultMaxCgroups)
	}
	if r.MaxCgroups == 0 {
		r.MaxCgroups = defaultMaxCgroups
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return r, nil
}
