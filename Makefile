# The two commands: `make demo` and `make test`. Everything installs itself into .venv.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint typecheck pytest demo catalog clean bench bench-quick bench-latency chaos bench-processors bench-duckdb tools cfn-lint checkov package deploy boot-test boot-tools

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,ops]'
	touch $@

# pytest and boot-test run side by side: the boot test mostly waits on the product's own
# timers (idle, drain, RestartSec), so together they take the longer one's time, not the sum.
# Their apt installs (tools, boot-tools) run first, one at a time: dpkg takes a lock.
test: venv lint typecheck cfn-lint checkov tools boot-tools
	$(MAKE) --no-print-directory -j2 --output-sync=target pytest boot-test

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

pytest: venv tools
	$(BIN)/pytest

# The whole pipeline on this machine: stack from deploy/cloudformation.yaml in an embedded AWS
# (moto), sample batch, start Lambda, daemons, idle stop, results. Work files in .demo/.
demo: venv
	$(BIN)/python -m demo $(if $(KEEP),--keep)

# Issue 7: every benchmark against its baseline in one run (long: 2,000 files, 0.5-2 GiB inputs);
# writes bench/results/bench.{json,md} and the README's Benchmarks section.
bench: venv
	$(BIN)/python bench/run_all.py

bench-quick: venv
	$(BIN)/python bench/run_all.py --quick --no-readme

# Issue 14: only the latency-proxy run (10/30/60 ms per call; a bandwidth-capped large object),
# merged into bench/results/bench.json and the README's Benchmarks section.
bench-latency: venv
	$(BIN)/python bench/run_all.py --latency-only

# Faults, kills and hostile inputs across hundreds of files (`make test` runs a bounded version).
chaos: venv
	set -o pipefail; $(BIN)/python tests/chaos.py --files 400 --kills 30 | tee bench/results/chaos.txt

bench-processors: venv
	$(BIN)/python bench/bench_processors.py

# The template's Glue tables, rendered from the processors' outputs.py declarations (issue 16);
# tests/test_catalog.py fails when the two drift.
catalog: venv
	$(BIN)/python -m s3worker.catalog $(TEMPLATE)

# Issue 14: each processor against the DuckDB query producing the same outputs (0.5-2 GiB).
bench-duckdb: venv
	$(BIN)/python bench/bench_vs_duckdb.py

clean:
	rm -rf $(VENV) $(TOOLS) $(DIST) .pytest_cache .mypy_cache .ruff_cache

# --- the worker booted for real (issue 10) ----------------------------------------------------
# make boot-test: boots the worker under real systemd as on EC2 and runs tests/test_boot.py
# (boot, work, kill -9, stop mid-job, restarts, idle stop, crash loop) plus the other tests
# marked `boot` (boot script, bundle reproducibility). Needs root; ~6 min with a warm cache.
# systemd-nspawn boots a Debian bookworm rootfs (debootstrap, cached in .cache/boot, rebuilt
# when tests/boot/rootfs.py's recipe changes: ~4 min) with the x86_64 bundle, the launch
# template's user data as moto's CloudFormation renders it, a loop device as the EBS volume
# and an IMDSv2 on 169.254.169.254 (added to lo for the run). See README "How it is tested".
BOOT_PACKAGES := systemd systemd-container debootstrap xfsprogs util-linux iproute2

boot-test: venv boot-tools
	$(MAKE) --no-print-directory package ARCH=x86_64
	$(BIN)/python -m tests.boot.rootfs
	$(BIN)/pytest -m boot --timeout=900 --durations=0 tests/test_boot.py tests/test_worker_boot.py tests/test_package.py

boot-tools:
	@[ "$$(id -u)" = 0 ] || { echo "make boot-test needs root (systemd-nspawn, losetup, mount)"; exit 1; }
	@missing=$$(for p in $(BOOT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	  [ -z "$$missing" ] || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; }

# --- deployment (issue 5): template and unit checks, release bundle, deploy ------------------
TOOLS := .tools
DIST := dist
TEMPLATE := deploy/cloudformation.yaml
# checkov pins libraries that fight the project's (boto3, jsonschema...): its own venv.
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(TOOLS)/checkov/.installed-$(CHECKOV_VERSION)

# Tools the checks need beyond .venv: checkov, systemd-analyze >= 250 (--offline), tmux, and
# Chromium with chromium-driver (the report's browser test).
tools: $(CHECKOV_STAMP)
	@command -v systemd-analyze >/dev/null || { \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends systemd; }
	@v=$$(systemd-analyze --version | awk 'NR==1{print $$2}'); [ "$$v" -ge 250 ] || { \
	  echo "systemd-analyze $$v lacks 'security --offline' (needs >= 250, e.g. Debian 12, Ubuntu 24.04)"; exit 1; }
	@command -v tmux >/dev/null || { \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends tmux; }
	@# The report's browser test (tests/test_report_browser.py): headless Chromium and its driver.
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends chromium chromium-driver; }

$(CHECKOV_STAMP):
	rm -rf $(TOOLS)/checkov
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

cfn-lint: venv
	$(BIN)/cfn-lint $(TEMPLATE)

# Skips are inline in the template (`checkov:skip=ID:reason`); --skip-download: offline.
checkov: $(CHECKOV_STAMP)
	$(TOOLS)/checkov/bin/checkov -f $(TEMPLATE) --framework cloudformation --quiet --compact --skip-download

# The worker bundle: a wheelhouse for the instance's CPython 3.11 on Amazon Linux 2023
# (glibc 2.34) and ARCH, the unit and the boot script; and the Lambda zip.
ARCH ?= arm64
WHEEL_ARCH := $(if $(filter arm64,$(ARCH)),aarch64,$(if $(filter x86_64,$(ARCH)),x86_64,$(error ARCH must be arm64 or x86_64)))
BUNDLE := $(DIST)/bundle-$(ARCH)
# pip does not widen an explicit --platform to older glibc tags: list every one AL2023 runs.
GLIBC_MINORS := 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34

# Reproducible: the same sources give the same bundle name (a new name replaces the canary).
# The wheel's zip times are fixed (1980-01-01, zip's earliest), the tarball's are 0, and gzip
# stores no time.
SOURCE_DATE_EPOCH := 315532800

package: venv
	rm -rf $(BUNDLE) $(DIST)/wheel $(DIST)/s3worker-$(ARCH)-*.tar.gz && mkdir -p $(BUNDLE)/wheelhouse
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(BIN)/pip wheel --quiet --no-deps --wheel-dir $(DIST)/wheel .
	$(BIN)/pip download --quiet --dest $(BUNDLE)/wheelhouse --only-binary=:all: \
	  --python-version 3.11 --implementation cp --abi cp311 \
	  $(foreach v,$(GLIBC_MINORS),--platform manylinux_2_$(v)_$(WHEEL_ARCH)) --platform manylinux2014_$(WHEEL_ARCH) \
	  $(DIST)/wheel/s3worker-*.whl
	cp systemd/s3worker.service deploy/worker-boot.sh $(BUNDLE)/
	set -o pipefail; tar -cf - --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C $(BUNDLE) . \
	  | gzip -9 --no-name >$(DIST)/bundle.tar.gz
	sum=$$(sha256sum $(DIST)/bundle.tar.gz | cut -c1-12); \
	  mv $(DIST)/bundle.tar.gz $(DIST)/s3worker-$(ARCH)-$$sum.tar.gz; \
	  echo "bundle: $(DIST)/s3worker-$(ARCH)-$$sum.tar.gz"
	$(BIN)/python lambda/build.py $(DIST)/lambda.zip

# make deploy STACK=name REGION=eu-west-1 [ARCH=x86_64] [PARAMS="MaxWorkers=3 AlarmEmail=a@b.c"]
STACK ?=
REGION ?=
PARAMS ?=
PREVIEW ?=
AWS := aws --region $(REGION)

# Checked before anything is built: the arguments, the AWS CLI, credentials for the region.
.PHONY: deploy-args deploy-preview
deploy-args:
	@[ -n "$(STACK)" ] && [ -n "$(REGION)" ] || { \
	  echo "usage: make deploy STACK=name REGION=region [ARCH=arm64|x86_64] [PARAMS=\"K=V ...\"]"; \
	  echo "       make deploy-preview STACK=name REGION=region   (change set only, nothing applied)"; \
	  exit 2; }
	@command -v aws >/dev/null || { echo "make deploy needs the AWS CLI (aws) on PATH"; exit 2; }
	@$(AWS) sts get-caller-identity --query Arn --output text >/dev/null || { \
	  echo "no usable AWS credentials for $(REGION): set AWS_PROFILE or run aws configure"; exit 2; }

# The same build and upload as deploy, then a change set that is described, not executed.
deploy-preview:
	@$(MAKE) --no-print-directory deploy PREVIEW=1

PREVIEW_CHANGES = id=$$($(AWS) cloudformation list-change-sets --stack-name $(STACK) \
	  --query 'sort_by(Summaries,&CreationTime)[-1].ChangeSetId' --output text); \
	$(AWS) cloudformation describe-change-set --change-set-name $$id --output table \
	  --query 'Changes[].ResourceChange.[Action,LogicalResourceId,ResourceType,Replacement]'; \
	echo "change set $$id not executed: apply with make deploy, or delete it in the console"

# deploy-args runs first (prerequisites run left to right): nothing is built for a deploy
# that could not start.
deploy: deploy-args package
	set -euo pipefail; \
	account=$$($(AWS) sts get-caller-identity --query Account --output text); \
	bucket=$${ARTIFACT_BUCKET:-s3worker-artifacts-$$account-$(REGION)}; \
	if ! $(AWS) s3api head-bucket --bucket $$bucket 2>/dev/null; then \
	  $(AWS) s3 mb s3://$$bucket; \
	  $(AWS) s3api put-public-access-block --bucket $$bucket --public-access-block-configuration \
	    BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true; \
	fi; \
	bundle=$$(ls -t $(DIST)/s3worker-$(ARCH)-*.tar.gz | head -1); key=releases/$$(basename $$bundle); \
	$(AWS) s3 cp --only-show-errors $$bundle s3://$$bucket/$$key; \
	$(AWS) cloudformation package --template-file $(TEMPLATE) --s3-bucket $$bucket \
	  --s3-prefix lambda --output-template-file $(DIST)/packaged.yaml; \
	$(AWS) cloudformation deploy --template-file $(DIST)/packaged.yaml --stack-name $(STACK) \
	  --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM --no-fail-on-empty-changeset \
	  $(if $(PREVIEW),--no-execute-changeset) \
	  --parameter-overrides ArtifactBucket=$$bucket ArtifactKey=$$key Architecture=$(ARCH) $(PARAMS); \
	if [ -n "$(PREVIEW)" ]; then $(PREVIEW_CHANGES); else \
	$(AWS) cloudformation describe-stacks --stack-name $(STACK) \
	  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text; fi

# --- the architecture picture (issue 6): docs/architecture.py -> docs/architecture.png -------
# The `docs` extra (diagrams) in its own venv, and Graphviz; `make test` needs neither.
.PHONY: diagram
DOCS_VENV := $(TOOLS)/docs
DOCS_STAMP := $(DOCS_VENV)/.installed

diagram: $(DOCS_STAMP)
	@command -v dot >/dev/null || { \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends graphviz; }
	$(DOCS_VENV)/bin/python docs/architecture.py

$(DOCS_STAMP): setup.cfg pyproject.toml
	rm -rf $(DOCS_VENV)
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/pip install --quiet --upgrade pip
	$(DOCS_VENV)/bin/pip install --quiet -e '.[docs]'
	touch $@

# --- make help (issue 17): every target, one line each ---------------------------------------
.PHONY: help
help:
	@echo "make demo [KEEP=1]    the whole pipeline on this machine (KEEP=1: leave it up, print exports)"
	@echo "make test             every check: lint, typecheck, cfn-lint, checkov, pytest, boot-test"
	@echo "make boot-test        the worker booted under real systemd (root; systemd-nspawn)"
	@echo "make boot-tools       install what boot-test needs (systemd-container, debootstrap...)"
	@echo "make lint             ruff check and format check"
	@echo "make typecheck        mypy"
	@echo "make pytest           the test suite only"
	@echo "make venv             create .venv with the package and its dev tools"
	@echo "make tools            checkov, systemd-analyze, tmux, chromium for the checks"
	@echo "make catalog          regenerate the template's Glue tables from processors/*/outputs.py"
	@echo "make cfn-lint         lint deploy/cloudformation.yaml"
	@echo "make checkov          security checks of the template"
	@echo "make bench            every benchmark (long); bench-quick: a short run"
	@echo "make bench-quick      a short benchmark run, README untouched"
	@echo "make bench-latency    the daemon, plain consumer and ceiling through a latency proxy"
	@echo "make bench-processors processor throughput against pandas' CSV floor"
	@echo "make bench-duckdb     each processor against the same outputs from a DuckDB query"
	@echo "make chaos            faults and kills across 400 files"
	@echo "make package [ARCH=]  build the worker bundle and the Lambda zip in dist/"
	@echo "make deploy STACK= REGION= [ARCH=] [PARAMS=]   package, upload, deploy the stack"
	@echo "make deploy-preview STACK= REGION=   the same, but only show the change set"
	@echo "make deploy-args      check the deploy's arguments and credentials (deploy runs it)"
	@echo "make diagram          re-render docs/architecture.png from docs/architecture.py"
	@echo "make clean            remove .venv, .tools and dist"
	@echo "make help             this list"
