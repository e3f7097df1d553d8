# microtrigger: `make run` shows it work, `make test` is what CI runs.
GO          ?= go
BENCHTIME   ?= 1s
FUZZTIME    ?= 3s
PKGS        := ./...
# VERSION is what `microtrigger --version` prints, stamped by the linker into
# main.version. A binary built without it (go build, go run, go install)
# prints the module version or the git revision the go command recorded.
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS     := -X main.version=$(VERSION)

.PHONY: run build test vet staticcheck unit bench soak fuzz fuzz-short rewrite tzdata clean

## run: embedded broker + processor + console sink + sample clickstream; prints what would be emailed
run:
	$(GO) run . run

## build: the single microtrigger binary, its version stamped (make build VERSION=v1.4.0)
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o microtrigger .

## test: vet, staticcheck, the race-enabled test suite and a short run of every fuzz target (what CI runs)
test: vet staticcheck unit fuzz-short

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)

staticcheck: # pinned by the go.mod tool directive, so a machine with only Go can run it
	$(GO) tool staticcheck $(PKGS)

unit:
	$(GO) test -race -tags invariants -timeout 15m $(PKGS)

## bench: throughput and cost benchmarks; figures go into README's performance section
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 60m $(PKGS)

## soak: the fault harness's long profile (internal/soak; make test runs the short one); report and logs in out/soak
soak:
	MICROTRIGGER_SOAK=long MICROTRIGGER_SOAK_OUT=$(CURDIR)/out/soak $(GO) test ./internal/soak -run TestSoak -v -count 1 -timeout 90m

## fuzz-short: every fuzz target (each func Fuzz* of a _test.go file), FUZZTIME each, one at a time.
## A failing input is written to the package's testdata/fuzz/<target>/: commit it, it is a seed from then on.
fuzz-short:
	@grep -r --include='*_test.go' -e '^func Fuzz' . | sed -E 's#^(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#' | sort | \
	while read -r pkg fn; do \
		echo "$(GO) test $$pkg -run '^$$' -fuzz '^$$fn\$$' -fuzztime $(FUZZTIME)"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s || exit 1; \
	done

## fuzz: a longer run of every fuzz target (seeds are committed)
fuzz:
	$(MAKE) fuzz-short FUZZTIME=30s

## rewrite: regenerate datadriven golden files after an intended change
rewrite:
	$(GO) test ./schema -run Golden -rewrite
	$(GO) test ./processor/rules -run TestCheck -rewrite
	$(GO) test ./processor/engine -run TestEngine -rewrite
	$(GO) test ./processor/policy -run TestPolicy -rewrite
	$(GO) test ./processor/backtest -run Golden -rewrite
	$(GO) test ./sink/render -run TestLocalGolden -rewrite
	$(GO) test ./deploy -run TestGeneratedConfigMaps -rewrite

## tzdata: refresh the embedded time zone database from the Go toolchain in use
tzdata:
	cp "$$($(GO) env GOROOT)/lib/time/zoneinfo.zip" schema/zoneinfo/zoneinfo.zip
	chmod 644 schema/zoneinfo/zoneinfo.zip
	$(GO) generate ./schema/zoneinfo

clean:
	rm -f microtrigger
