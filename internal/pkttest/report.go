package pkttest

import (
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/internal/capture/filter"
)

// Result is how a case went.
type Result struct {
	Suite    *Suite
	Case     *Case
	Duration time.Duration
	// Err is why the case could not run (the program did not load, the
	// kernel refused the test run).
	Err error
	// Runs are the last run of each step that ran, or the run that
	// failed: a case stops at its first failing run, since what follows
	// depends on it.
	Runs []Run
}

// Run is one packet through the program.
type Run struct {
	Step, Steps           int // from 1
	Iteration, Iterations int // from 1
	In, Out               []byte
	Verdict               Verdict
	// SKB is a TC program's socket buffer after the run; nil for XDP.
	SKB        *SKB
	Mismatches []Mismatch
}

// Passed tells a case that ran and met every expectation.
func (r *Result) Passed() bool {
	return r.Err == nil && (len(r.Runs) == 0 || len(r.Runs[len(r.Runs)-1].Mismatches) == 0)
}

// RenderOptions choose what a report shows.
type RenderOptions struct {
	// Verbose shows the packets of passing cases too.
	Verbose bool
	// Durations shows how long each case took (off for output compared
	// with a golden file).
	Durations bool
}

// WriteTable prints a line per case, and for a failing one (every case
// when verbose) its packets, layer by layer, and what differs from the
// expectation: the value wanted and got, and their bytes.
func WriteTable(w io.Writer, results []*Result, o RenderOptions) error {
	var b strings.Builder
	passed, total := 0, time.Duration(0)
	for _, r := range results {
		status := "FAIL"
		if r.Passed() {
			status = "PASS"
			passed++
		}
		total += r.Duration
		fmt.Fprintf(&b, "%s  %s", status, r.Case.Name)
		if o.Durations {
			fmt.Fprintf(&b, "  (%s)", roundDuration(r.Duration))
		}
		b.WriteByte('\n')
		if r.Passed() && !o.Verbose {
			continue
		}
		fmt.Fprintf(&b, "      %s:%d:%d\n", r.Suite.File, r.Case.Line, r.Case.Column)
		if r.Err != nil {
			fmt.Fprintf(&b, "      error: %s\n", indent(r.Err.Error(), "        "))
			continue
		}
		for i, run := range r.Runs {
			if !o.Verbose && i < len(r.Runs)-1 {
				fmt.Fprintf(&b, "      step %d of %d: %s, as expected\n", run.Step, run.Steps, run.Verdict)
				continue
			}
			if run.Steps > 1 || run.Iterations > 1 {
				fmt.Fprintf(&b, "      step %d of %d, run %d of %d\n", run.Step, run.Steps, run.Iteration, run.Iterations)
			}
			writeRun(&b, r.Suite.File, run)
		}
	}
	noun := "cases"
	if len(results) == 1 {
		noun = "case"
	}
	fmt.Fprintf(&b, "%d %s: %d passed, %d failed", len(results), noun, passed, len(results)-passed)
	if o.Durations {
		fmt.Fprintf(&b, " (%s)", roundDuration(total))
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

func roundDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func indent(s, prefix string) string { return strings.ReplaceAll(s, "\n", "\n"+prefix) }

func writeRun(b *strings.Builder, file string, run Run) {
	fmt.Fprintf(b, "      in       %s\n", Summary(run.In))
	fmt.Fprintf(b, "      verdict  %s\n", run.Verdict)
	if run.SKB != nil {
		fmt.Fprintf(b, "      skb      mark %s priority %d\n", hexAndDecimal(run.SKB.Mark), run.SKB.Priority)
	}
	if run.Out != nil {
		fmt.Fprintf(b, "      out      %s\n", Summary(run.Out))
	}
	for _, m := range run.Mismatches {
		fmt.Fprintf(b, "      - %s: want %s, got %s", m.Field, m.Want, m.Got)
		if m.Line > 0 {
			fmt.Fprintf(b, "  (%s:%d:%d)", file, m.Line, m.Column)
		}
		b.WriteByte('\n')
		switch {
		case m.Whole:
			writeHexDiff(b, m.WantBytes, m.GotBytes)
		case m.GotBytes != nil && m.WantBytes != nil:
			fmt.Fprintf(b, "          %s: want %x, got %x\n", span(m.Off, m.Len), m.WantBytes, m.GotBytes)
		case m.GotBytes != nil:
			fmt.Fprintf(b, "          %s: %x\n", span(m.Off, m.Len), m.GotBytes)
		}
	}
	if run.Out != nil {
		b.WriteString("      out, layer by layer:\n")
		for _, line := range LayerLines(Dissect(run.Out)) {
			fmt.Fprintf(b, "        %s\n", line)
		}
	}
}

// span names a field's bytes in the packet, counted from 0.
func span(off, n int) string {
	if n == 1 {
		return fmt.Sprintf("byte %d", off)
	}
	return fmt.Sprintf("bytes %d-%d", off, off+n-1)
}

// writeHexDiff prints the 16-byte rows in which two packets differ, the
// wanted row above the row got, with the differing bytes marked below.
func writeHexDiff(b *strings.Builder, want, got []byte) {
	row := func(p []byte, at int) string {
		if at >= len(p) {
			return "(ended)"
		}
		var s strings.Builder
		for i := at; i < at+16; i++ {
			if i < len(p) {
				fmt.Fprintf(&s, "%02x ", p[i])
			} else {
				s.WriteString("   ")
			}
		}
		return strings.TrimRight(s.String(), " ")
	}
	for at := 0; at < max(len(want), len(got)); at += 16 {
		var marks strings.Builder
		differ := false
		for i := at; i < at+16 && i < max(len(want), len(got)); i++ {
			if i >= len(want) || i >= len(got) || want[i] != got[i] {
				marks.WriteString("^^ ")
				differ = true
			} else {
				marks.WriteString("   ")
			}
		}
		if !differ {
			continue
		}
		fmt.Fprintf(b, "          want %04x  %s\n", at, row(want, at))
		fmt.Fprintf(b, "          got  %04x  %s\n", at, row(got, at))
		fmt.Fprintf(b, "                     %s\n", strings.TrimRight(marks.String(), " "))
	}
}

// Summary is a frame on one line, as `dsrlab capture` prints it (MACs
// first).
func Summary(frame []byte) string {
	return fmt.Sprintf("%s, length %d", capture.Decode(frame, filter.Ethernet).String(true), len(frame))
}

// LayerLines describe a dissected packet a layer per line, with every
// field a test may name, valued as a case file writes them.
func LayerLines(layers []Layer) []string {
	var lines []string
	for i, p := range positions(layers) {
		l := layers[i]
		var s strings.Builder
		fmt.Fprintf(&s, "%-16s", strings.Repeat("inner.", p.depth)+l.Kind)
		for _, f := range l.Fields {
			d, _ := fieldDefOf(l.Kind, f.Name)
			switch {
			case f.minor:
			case l.Kind == "payload":
				fmt.Fprintf(&s, " %d bytes %s", len(f.Value.Bytes), abbreviate(f.Value.Bytes))
			default:
				fmt.Fprintf(&s, " %s %s", f.Name, describe(d, f.Value, true))
			}
		}
		if l.Truncated {
			s.WriteString(" [truncated]")
		}
		lines = append(lines, strings.TrimRight(s.String(), " "))
	}
	return lines
}

func abbreviate(b []byte) string {
	const shown = 24
	if len(b) <= shown {
		return hex.EncodeToString(b)
	}
	return hex.EncodeToString(b[:shown]) + "..."
}

// jsonResult is a case in --format json.
type jsonResult struct {
	File       string    `json:"file"`
	Line       int       `json:"line"`
	Name       string    `json:"name"`
	Passed     bool      `json:"passed"`
	DurationNS int64     `json:"duration_ns"`
	Error      string    `json:"error,omitempty"`
	Runs       []jsonRun `json:"runs,omitempty"`
}

type jsonRun struct {
	Step       int            `json:"step"`
	Run        int            `json:"run"`
	Verdict    string         `json:"verdict"`
	In         string         `json:"in"`
	Out        string         `json:"out,omitempty"`
	SKB        *jsonSKB       `json:"skb,omitempty"`
	Mismatches []jsonMismatch `json:"mismatches,omitempty"`
}

type jsonSKB struct {
	Mark     uint32 `json:"mark"`
	Priority uint32 `json:"priority"`
}

type jsonMismatch struct {
	Field  string `json:"field"`
	Want   string `json:"want"`
	Got    string `json:"got"`
	Offset *int   `json:"offset,omitempty"`
	Length int    `json:"length,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

// WriteJSON writes the results as one JSON array, packets in hex.
func WriteJSON(w io.Writer, results []*Result) error {
	out := []jsonResult{}
	for _, r := range results {
		jr := jsonResult{File: r.Suite.File, Line: r.Case.Line, Name: r.Case.Name, Passed: r.Passed(), DurationNS: r.Duration.Nanoseconds()}
		if r.Err != nil {
			jr.Error = r.Err.Error()
		}
		for _, run := range r.Runs {
			js := jsonRun{Step: run.Step, Run: run.Iteration, Verdict: run.Verdict.String(), In: hex.EncodeToString(run.In), Out: hex.EncodeToString(run.Out)}
			if run.SKB != nil {
				js.SKB = &jsonSKB{Mark: run.SKB.Mark, Priority: run.SKB.Priority}
			}
			for _, m := range run.Mismatches {
				jm := jsonMismatch{Field: m.Field, Want: m.Want, Got: m.Got, Line: m.Line, Column: m.Column}
				if m.Len > 0 {
					jm.Offset, jm.Length = &m.Off, m.Len
				}
				js.Mismatches = append(js.Mismatches, jm)
			}
			jr.Runs = append(jr.Runs, js)
		}
		out = append(out, jr)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",cdata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.6f", d.Seconds()) }

// WriteJUnit writes JUnit XML, as CI systems read it: a test suite per
// case file, a test case per case; a case that failed carries the same
// text the table shows, one that could not run an error.
func WriteJUnit(w io.Writer, results []*Result) error {
	var all junitSuites
	var total time.Duration
	index := map[*Suite]int{}
	took := map[int]time.Duration{}
	for _, r := range results {
		i, ok := index[r.Suite]
		if !ok {
			i = len(all.Suites)
			index[r.Suite] = i
			all.Suites = append(all.Suites, junitSuite{Name: r.Suite.File})
		}
		s := &all.Suites[i]
		c := junitCase{Name: r.Case.Name, Classname: r.Suite.File, Time: seconds(r.Duration)}
		switch {
		case r.Err != nil:
			c.Error = &junitProblem{Message: firstLine(r.Err.Error()), Text: r.Err.Error()}
			s.Errors++
		case !r.Passed():
			var text strings.Builder
			last := r.Runs[len(r.Runs)-1]
			writeRun(&text, r.Suite.File, last)
			m := last.Mismatches[0]
			c.Failure = &junitProblem{Message: fmt.Sprintf("%s: want %s, got %s", m.Field, m.Want, m.Got), Text: text.String()}
			s.Failures++
		}
		s.Tests++
		s.Cases = append(s.Cases, c)
		total += r.Duration
		took[i] += r.Duration
		s.Time = seconds(took[i])
	}
	for _, s := range all.Suites {
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Errors += s.Errors
	}
	all.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
