PYTHON ?= python
EXT_SUFFIX := $(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")

.PHONY: dev rust cython test memcheck bench lint format wheel wheel-test matrix

dev:            ## build every backend and install igcore in editable mode, with test and bench extras
	IGCORE_REQUIRE_NATIVE=1 $(PYTHON) -m pip install -e '.[test,bench,lint,pipelines]'

rust:           ## rebuild only the Rust extension into the source tree (quicker than `make dev`)
	PYO3_BUILD_EXTENSION_MODULE=1 cargo build --release -p igcore-py
	cp target/release/lib_rust.so src/igcore/_rust$(EXT_SUFFIX)

cython:         ## rebuild only the Cython extensions into the source tree
	IGCORE_BUILD=cython $(PYTHON) setup.py -q build_ext --inplace -j 2

test:           ## the test suite on every backend, each required
	IGCORE_REQUIRE_BACKENDS=rust,cython,python $(PYTHON) -m pytest
	cargo test -p igcore-core

memcheck:       ## the test suite under AddressSanitizer, on each compiled backend (BACKENDS=rust or cython for one)
	PYTHON=$(PYTHON) bash .ci/memcheck $(BACKENDS)

wheel:          ## an sdist and, built from it, a manylinux wheel (auditwheel), both in dist/
	PYTHON=$(PYTHON) bash .ci/wheel

wheel-test:     ## `make wheel`, then the sdist's whole suite against the wheel in a fresh environment
	PYTHON=$(PYTHON) EXTRAS=test,bench,web,pipelines bash .ci/wheel --test-command "python -m pytest"

matrix:         ## a wheel for every supported Python (setup.cfg's classifiers), each tested on the hot paths
	for version in $$(bash .ci/versions); do \
	  PYTHON=$$(bash .ci/python $$version) bash .ci/wheel --hot-paths || exit 1; \
	done

bench:          ## the benchmark table (add ARGS=--quick for a short run)
	igcore bench $(ARGS)

lint:           ## the lint gate that CI runs
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	ruff check .
	ruff format --check .
	$(PYTHON) -m mypy
	$(PYTHON) .ci/stubtest

format:
	cargo fmt --all
	ruff format .
	ruff check --fix .
