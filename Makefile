# The two commands of the README: `make run` and `make test`. Both install
# what is missing (Debian's postgresql) by themselves.

GO        ?= go
DATA_DIR  ?= data
GOTEST    ?= $(GO) test -count=1 -timeout 20m

.PHONY: run test build bench fuzz vet

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
test:
	./scripts/ensure-postgres.sh
	$(GO) vet ./...
	$(GO) run ./storage/pgtest/pgtestrun -- $(GOTEST) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./rooms/...

vet:
	$(GO) vet ./...
