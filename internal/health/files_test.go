package health

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A follower goes on from its offset; a file shorter than the offset (an
// agent replaced, its events started anew) is read from its start.
func TestReadEventsFollowsAFileThatStartedAnew(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	for _, r := range []string{"real1", "real2", "real3"} {
		if err := AppendEvent(dir, Event{Time: at, Type: "health", Real: r}); err != nil {
			t.Fatal(err)
		}
	}
	evs, offset, err := ReadEvents(dir, time.Time{}, 0)
	if err != nil || len(evs) != 3 {
		t.Fatalf("first read: %d events, %v", len(evs), err)
	}
	if evs, _, err := ReadEvents(dir, time.Time{}, offset); err != nil || len(evs) != 0 {
		t.Fatalf("nothing new: %d events, %v", len(evs), err)
	}
	if err := os.Remove(filepath.Join(dir, EventsFile)); err != nil {
		t.Fatal(err)
	}
	if err := AppendEvent(dir, Event{Time: at, Type: "controller", Result: "started"}); err != nil {
		t.Fatal(err)
	}
	evs, _, err = ReadEvents(dir, time.Time{}, offset)
	if err != nil || len(evs) != 1 || evs[0].Type != "controller" {
		t.Errorf("after the file started anew: %+v, %v; want the controller's start", evs, err)
	}
}
