package config

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration that reads from JSON either as a string in Go
// syntax ("90s", "1h") or as an integer number of nanoseconds, the same
// shapes caddy.Duration accepts, so JSON configs look the same everywhere.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration %s: want a string like \"90s\" or integer nanoseconds", b)
	}
	*d = Duration(n)
	return nil
}
