# protoc-gen-restmon: every target sets up what it needs (a venv in .venv) on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
CORPUS_VERSION := 6.0.1
CORPUS := corpus/google-proto-files
EXAMPLES := $(sort $(wildcard protos/*/v1/*.proto))

.PHONY: venv test demo bench lint corpus clean openapi-corpus fuzz

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

## Run the test suite (the googleapis corpus tests run when `make corpus` has fetched it), on
## every core (pytest-xdist; worksteal: a worker that runs dry takes tests queued for another, so
## the long corpus tests do not leave one core idle at the end); PYTEST_ARGS adds arguments,
## e.g. PYTEST_ARGS="-m 'not corpus'".
PYTEST_ARGS ?=
test: venv
	$(PY) -m pytest -n auto --dist worksteal --durations=30 $(PYTEST_ARGS)

## Validate the OpenAPI document of every googleapis package, the largest too (`make test`
## stops at 128 KiB a document: openapi-spec-validator takes ~12 CPU-minutes for all of them).
openapi-corpus: venv corpus
	RESTMON_OPENAPI_CORPUS_MAX_KIB=0 $(PY) -m pytest -s tests/test_openapi_corpus.py

## schemathesis against the example gateway (issue 14) with FUZZ_EXAMPLES examples per operation
## and mode (`make test` uses 10): in process, over HTTP (the demo server, `restmon serve` in
## proxy mode) and through `st run`.
FUZZ_EXAMPLES ?= 100
fuzz: venv
	RESTMON_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:randomly --durations=5 \
		tests/test_openapi_fuzz.py tests/test_openapi_fuzz_http.py

## Generate the example protos, list their REST routes, serve them: gRPC :50051, REST :8080.
demo: venv
	rm -rf demo-out
	$(BIN)/restmon generate -I protos -o demo-out/gen $(EXAMPLES)
	cd demo-out && ../$(BIN)/restmon routes gen
	$(PY) -m examples.serve demo-out

## Benchmarks (results in benchmarks/RESULTS.md); bench_gateway, bench_proxy, bench_workers and
## bench_connections need wrk (apt-get install wrk); bench_proxy_vs_grpc_gateway also needs
## Debian's Go and grpc-gateway packages (it prints the apt-get line when they are missing).
bench: venv
	$(PY) benchmarks/bench_generate.py
	$(PY) benchmarks/bench_openapi.py
	$(PY) benchmarks/bench_router.py
	$(PY) benchmarks/bench_json.py
	$(PY) benchmarks/bench_gateway.py
	$(PY) benchmarks/bench_proxy.py
	$(PY) benchmarks/bench_workers.py
	$(PY) benchmarks/bench_proxy_vs_grpc_gateway.py
	$(PY) benchmarks/bench_connections.py
	$(PY) benchmarks/bench_proxy_memory.py
	$(PY) benchmarks/bench_monitor_store.py
	$(PY) benchmarks/bench_monitor_overhead.py
	$(PY) benchmarks/bench_openapi_serving.py

lint: venv
	$(BIN)/ruff check protoc_gen_restmon tests benchmarks examples
	$(BIN)/ruff format --check protoc_gen_restmon tests benchmarks examples
	$(BIN)/mypy

## Fetch the googleapis protos (npm google-proto-files) into corpus/ (git-ignored).
corpus: $(CORPUS)/.fetched

$(CORPUS)/.fetched:
	rm -rf $(CORPUS) corpus/tmp && mkdir -p corpus/tmp
	cd corpus/tmp && npm pack --silent google-proto-files@$(CORPUS_VERSION) >/dev/null
	tar -xzf corpus/tmp/google-proto-files-$(CORPUS_VERSION).tgz -C corpus/tmp
	mv corpus/tmp/package $(CORPUS) && rm -rf corpus/tmp
	touch $@

clean:
	rm -rf $(VENV) demo-out build dist .pytest_cache .mypy_cache .ruff_cache
