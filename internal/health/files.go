package health

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dsrlab/dsrlab/internal/fileio"
)

// The files the controller keeps in the lab's state directory, beside the
// recorded topology.
const (
	// StateFile is the health of every checked real, rewritten whole.
	StateFile = "health.json"
	// EventsFile is what happened, one JSON event a line, appended.
	EventsFile = "events.jsonl"
)

// State is health.json.
type State struct {
	Updated time.Time `json:"updated"`
	Reals   []Real    `json:"reals"`
	// FailOpen lists the VIPs a katran keeps every real of, although all
	// are down.
	FailOpen []FailOpen `json:"fail_open,omitempty"`
}

// FailOpen is a VIP that a katran balances over reals that are all down.
type FailOpen struct {
	VIP    string `json:"vip"`
	Katran string `json:"katran"`
}

// Of returns the health of k, and false if k is not checked.
func (s State) Of(k Key) (Real, bool) {
	for _, r := range s.Reals {
		if r.Key == k {
			return r, true
		}
	}
	return Real{}, false
}

// OfKatran returns the health of the reals katran checks.
func (s State) OfKatran(katran string) []Real {
	var out []Real
	for _, r := range s.Reals {
		if r.Katran == katran {
			out = append(out, r)
		}
	}
	return out
}

// WriteState replaces dir's health.json in one rename: a reader sees the
// old file or the new one.
func WriteState(dir string, s State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("health: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, StateFile)); err != nil {
		return fmt.Errorf("health: %w", err)
	}
	return nil
}

// ReadState reads dir's health.json; a missing file is an empty State
// (nothing checked yet).
func ReadState(dir string) (State, error) {
	data, err := fileio.ReadRegular(filepath.Join(dir, StateFile), fileio.MaxText)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("health: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return State{}, fmt.Errorf("health: %s: %w", filepath.Join(dir, StateFile), err)
	}
	return s, nil
}

// Event is one thing that happened in a lab, as `dsrlab events` shows it.
// Type says which fields are set: "health" (a real's status changed on a
// katran), "fail-open" (a katran keeps every real of a VIP although all
// are down) and "fail-open-end", "controller" (the controller started),
// "container" (the engine started or stopped one of the lab's).
type Event struct {
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Lab    string    `json:"lab"`
	VIP    string    `json:"vip,omitempty"`
	Katran string    `json:"katran,omitempty"`
	Real   string    `json:"real,omitempty"`
	From   Status    `json:"from,omitempty"`
	To     Status    `json:"to,omitempty"`
	// Result is the check's result, or what else the event says.
	Result string `json:"result,omitempty"`
	// Container and Action describe a container event ("start", "die").
	Container string `json:"container,omitempty"`
	Action    string `json:"action,omitempty"`
	Host      string `json:"host,omitempty"`
}

// AppendEvent adds e to dir's events file. One write of one line with
// O_APPEND: concurrent writers do not interleave within it.
func AppendEvent(dir string, e Event) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, EventsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	return errors.Join(err, f.Close())
}

// ReadEvents returns the events of dir's events file at or after since,
// and the offset read up to, from which a follower goes on (offset 0:
// from the start). A line cut short by a writer still writing is left for
// the next read.
func ReadEvents(dir string, since time.Time, offset int64) ([]Event, int64, error) {
	path := filepath.Join(dir, EventsFile)
	if err := fileio.CheckRegular(path); errors.Is(err, fs.ErrNotExist) {
		return nil, offset, nil
	} else if err != nil {
		return nil, offset, fmt.Errorf("events: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, offset, fmt.Errorf("events: %w", err)
	}
	defer f.Close()
	// A file shorter than the offset is another file (a replaced
	// agent's): read from its start.
	if info, err := f.Stat(); err == nil && info.Size() < offset {
		offset = 0
	}
	if _, err := f.Seek(offset, 0); err != nil {
		return nil, offset, fmt.Errorf("events: %w", err)
	}
	var out []Event
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break // EOF, or a partial last line left for later
		}
		offset += int64(len(line))
		var e Event
		if json.Unmarshal(bytes.TrimSpace(line), &e) != nil {
			continue // not an event: a line from a crashed writer
		}
		if !e.Time.Before(since) {
			out = append(out, e)
		}
	}
	return out, offset, nil
}
