# Every target sets up .venv itself (Python 3.11+, pinned dependencies) first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
# pytest-xdist workers for `make test`: twice the cores of a 2-core machine, since many tests
# wait on the wall clock (sandbox blocks, subprocesses, Node.js, browsers) rather than compute.
PYTEST_WORKERS ?= 4
# The installed package's tree as links (harness/ is hydrogen_harness, fakes/ its .fakes), for
# the tools that read packages from disk rather than import them: mypy and import-linter.
TYPECHECK_TREE := .cache/typecheck

.PHONY: setup demo test typecheck test-deep mutation contracts bench sandbox clean

$(READY): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(READY)

setup: $(READY)

## demo: the main job, a simulation of 5 tasks through 6 nodes on the in-memory chain
demo: $(READY)
	$(BIN)/hydrogen-harness simulate --tasks 5 --nodes 6 --seed 1 --out out/demo

## test: the whole default suite (quick property profile included). `--dist worksteal`: a worker
## that runs out of tests takes half of another's queue, so the run does not end with one worker
## going through a long tail while the others idle (xdist's default hands out big chunks).
## Bytecode caches on even where the environment turns them off (PYTHONDONTWRITEBYTECODE):
## without them every pytest process (each worker, the users' sessions, each sandbox
## subprocess) compiles our modules and assertion-rewrites the test modules from source again,
## half of a worker's start-up.
test: $(READY)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal -p no:cacheprovider

## typecheck: mypy over the package (harness/, fakes/) and bench, then the layers contract
## (import-linter); settings in pyproject.toml
typecheck: $(READY)
	rm -rf $(TYPECHECK_TREE) && mkdir -p $(TYPECHECK_TREE)
	cp -rs $(CURDIR)/harness $(TYPECHECK_TREE)/hydrogen_harness
	cp -rs $(CURDIR)/fakes $(TYPECHECK_TREE)/hydrogen_harness/fakes
	cp -rs $(CURDIR)/contracts $(TYPECHECK_TREE)/hydrogen_harness/contract_sources
	MYPYPATH=$(TYPECHECK_TREE) $(BIN)/python -m mypy -p hydrogen_harness -p bench
	PYTHONPATH=$(TYPECHECK_TREE) $(BIN)/lint-imports

## test-deep: the deep property-test profile on revm (runs of up to 500 steps until 256
## runs of at least 50 steps are complete)
test-deep: $(READY)
	HYDROGEN_BACKEND=revm HYPOTHESIS_PROFILE=deep $(BIN)/python -m pytest -p no:cacheprovider tests/properties -q -s

## mutation: break each settlement rule in a copy of the contracts and count the mutants caught
## (on revm; MUTATION_PROFILE=deep gives each mutant 256 runs of up to 500 steps)
mutation: $(READY)
	HYDROGEN_BACKEND=revm $(BIN)/python -m bench.mutation

## contracts: compile the contracts and print their gas table
contracts: $(READY)
	$(BIN)/hydrogen-harness contracts

## bench: performance figures as JSON and a table
bench: $(READY)
	$(BIN)/python -m bench

## sandbox: the network on 127.0.0.1 (JSON-RPC :8545, Relay :8080)
sandbox: $(READY)
	$(BIN)/hydrogen-harness sandbox

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
