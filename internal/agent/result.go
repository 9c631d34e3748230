package agent

import (
	"encoding/json"
	"fmt"
	"os"
)

// MaxTerminationMessage is the kubelet's limit on a termination message.
const MaxTerminationMessage = 4096

// EncodeResult renders a result as a termination message, dropping the
// object list if the message would exceed the kubelet's limit.
// Database errors lose their row values first (RedactError).
func EncodeResult(r Result) []byte {
	r.Error = RedactError(r.Error)
	data, _ := json.Marshal(r)
	if len(data) > MaxTerminationMessage {
		r.Objects = nil
		data, _ = json.Marshal(r)
	}
	if len(data) > MaxTerminationMessage {
		r.Error = r.Error[:min(len(r.Error), 1024)]
		data, _ = json.Marshal(r)
	}
	return data
}

// ParseResult reads the termination message an agent wrote.
func ParseResult(msg string) (Result, error) {
	var r Result
	if len(msg) > MaxTerminationMessage {
		return r, fmt.Errorf("termination message of %d bytes exceeds %d", len(msg), MaxTerminationMessage)
	}
	if err := json.Unmarshal([]byte(msg), &r); err != nil {
		return r, fmt.Errorf("termination message is not an agent result: %w", err)
	}
	// Again on the operator's side: an agent of an older release did not.
	r.Error = RedactError(r.Error)
	if r.Error == "" && (r.Location == "" || r.Size < 0) {
		return r, fmt.Errorf("termination message reports neither a location nor an error")
	}
	return r, nil
}

// WriteResult writes the result where the kubelet reads the termination message.
func WriteResult(path string, r Result) error {
	if path == "" {
		return nil
	}
	return os.WriteFile(path, EncodeResult(r), 0o600)
}
