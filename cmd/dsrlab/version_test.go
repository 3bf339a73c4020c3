package main

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Version: "v0.0.0-20261126164231-f5dccdac6f25+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "f5dccdac6f251feb34c5c538315bd4dd0fb8b207"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	// What a build with GOFLAGS=-buildvcs=false embeds.
	noVCS := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}
	for _, tc := range []struct {
		name            string
		version, commit string
		info            *debug.BuildInfo
		want            string
	}{
		{"make build", "v0.3.0-2-gf5dccda-dirty", "f5dccdac6f251feb34c5c538315bd4dd0fb8b207", noVCS,
			"dsrlab v0.3.0-2-gf5dccda-dirty commit f5dccdac6f251feb34c5c538315bd4dd0fb8b207 go1.26.8"},
		{"make build wins over the toolchain's stamp", "f5dccda", "f5dccdac6f251feb34c5c538315bd4dd0fb8b207", vcs,
			"dsrlab f5dccda commit f5dccdac6f251feb34c5c538315bd4dd0fb8b207 go1.26.8"},
		{"go build with vcs stamping", "", "", vcs,
			"dsrlab v0.0.0-20261126164231-f5dccdac6f25+dirty commit f5dccdac6f251feb34c5c538315bd4dd0fb8b207 (modified) go1.26.8"},
		{"go build without vcs stamping", "", "", noVCS, "dsrlab (devel) commit unknown go1.26.8"},
		{"no build information", "", "", nil, "dsrlab (devel) commit unknown " + runtime.Version()},
		{"only the commit stamped", "", "f5dccdac6f251feb34c5c538315bd4dd0fb8b207", noVCS,
			"dsrlab (devel) commit f5dccdac6f251feb34c5c538315bd4dd0fb8b207 go1.26.8"},
	} {
		if got := formatVersion(tc.version, tc.commit, tc.info); got != tc.want {
			t.Errorf("%s: formatVersion = %q, want %q", tc.name, got, tc.want)
		}
	}
}
