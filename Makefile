# dsrlab — see README.md. Every target runs as root on a Debian host.

GO      ?= go
BIN     := bin/dsrlab
# The binary is copied into the scratch-based node image (reals run its echo
# service), so it must be static.
export CGO_ENABLED := 0

.PHONY: all build deps deps-test lab down test race vet fmt-check portable fuzz bench soak generate check-generate clean

all: build

# `dsrlab version` names what was built: the toolchain's VCS stamping is off
# here (see cmd/dsrlab/version.go), so the Makefile stamps it.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)

build:
	$(GO) build -ldflags '-X main.version=$(VERSION) -X main.commit=$(COMMIT)' -o $(BIN) ./cmd/dsrlab

deps:
	scripts/install-deps.sh

# The tests also compile BPF C (clang), simulate other hosts (iproute2) and
# run an SSH server for the ssh:// engine test.
deps-test:
	scripts/install-deps.sh --test

# Fresh machine to a working reference lab, proven by the user's own check.
lab: deps build
	$(BIN) up
	scripts/smoke.sh
	$(BIN) verify

down: build
	$(BIN) down

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# validate, graph and version work on a laptop: the CLI must build for
# other systems (the lab commands then say they need Linux).
portable:
	GOOS=darwin $(GO) build -o /dev/null ./cmd/dsrlab
	GOOS=windows $(GO) build -o /dev/null ./cmd/dsrlab

# All tests: unit, netns, BPF (BPF_PROG_TEST_RUN) and the end-to-end labs.
test: deps-test vet
	$(GO) test -count=1 -timeout 30m ./...

# The data-race detector needs cgo; the end-to-end suite is left out (it
# builds its own static dsrlab and is already covered by make test).
race:
	CGO_ENABLED=1 $(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)

# Bounded fuzzing of the topology parser and validator.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./topology/

# One-run measurements written to docs/BENCHMARKS.md (installs iperf3).
bench: deps build
	scripts/bench.sh

soak: deps build
	scripts/soak.sh

# Regenerating the BPF objects needs clang and llvm (scripts/install-deps.sh --clang).
generate:
	$(GO) generate ./bpf/ ./internal/trace/bpf/

# Fails when the committed BPF objects are not what the C sources compile to.
check-generate: generate
	git diff --exit-code -- bpf/ internal/trace/bpf/

clean:
	rm -rf bin
