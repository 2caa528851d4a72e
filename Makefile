# The two commands of the README: `make run` and `make test`. Both install
# what is missing (Debian's postgresql) by themselves.

GO        ?= go
DATA_DIR  ?= data
GOTEST    ?= $(GO) test -count=1 -timeout 20m

.PHONY: run test build bench bench-go bench-load fuzz vet

build:
	$(GO) build -o bin/parley ./cmd/parley

# Runs the server on the embedded default: a managed PostgreSQL under
# $(DATA_DIR)/postgres, open registration on http://127.0.0.1:8008.
run: build
	./scripts/ensure-postgres.sh
	PARLEY_DATA_DIR=$(DATA_DIR) ./bin/parley serve

# Runs the whole test suite against one throwaway PostgreSQL cluster and one
# throwaway MinIO server shared by every test package (or
# PARLEY_TEST_DATABASE_URL / PARLEY_TEST_S3_ENDPOINT when they are set). The
# first run on a machine builds MinIO into ~/.cache/parley (minutes).
# tests/interop needs Node.js >= 20 and npm (npm ci of matrix-js-sdk).
test:
	./scripts/ensure-postgres.sh
	$(GO) vet ./...
	$(GO) run ./storage/pgtest/pgtestrun -- $(GOTEST) ./...

# `make bench` runs the Go benchmarks of rooms/ and then the load tool's
# standard set (cmd/parley-bench) against a freshly started Parley: the
# binary on a temporary data directory with its own managed PostgreSQL
# (durable: fsync on). BENCH_FLAGS sizes the run (see parley-bench -h); the
# default fits a small machine, the issue's full sizes are the tool's
# defaults (BENCH_FLAGS=-password=).
BENCH_FLAGS ?= -password= -fanout-messages 10 -connections 2000 -hold 20s -sync-rooms 100

bench: bench-go bench-load

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./rooms/...

bench-load: build
	./scripts/ensure-postgres.sh
	$(GO) build -o bin/parley-bench ./cmd/parley-bench
	./bin/parley-bench -start bin/parley $(BENCH_FLAGS)

vet:
	$(GO) vet ./...
