# Everything a person runs. `make help` lists the targets.
# The only prerequisite is python3 (3.11+): the first target run builds the tool virtualenv.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON        ?= python3
HOST          ?= 127.0.0.1
ENDPOINT_PORT ?= 8080
API_PORT      ?= 3000
RUN_DIR       ?= .run
MODEL         ?= $(RUN_DIR)/model/model.tar.gz
IMAGES        ?=
DATA          ?=
EPOCHS        ?= 5
SHARED_PHOTOS := ../shared/data/dog-photos
SAMPLE_PHOTOS := $(SHARED_PHOTOS)/udacity-samples

TOOLS     := .venv/tools
TOX       := $(TOOLS)/bin/tox
# Each service runs from its own tox virtualenv, as it would on AWS: only the trainer's has torch.
TRAINER_BIN := .tox/trainer/bin
LAMBDA_BIN  := .tox/lambda/bin
CLIENT_BIN  := .tox/client/bin
SERVICE_ENVS := .tox/.service-envs.stamp
STACK     := $(PYTHON) scripts/localstack.py --run-dir $(RUN_DIR) --host $(HOST) \
             --endpoint-port $(ENDPOINT_PORT) --api-port $(API_PORT)
API_URL   := http://$(HOST):$(API_PORT)

.PHONY: help test lint test-client test-lambda test-trainer test-terraform test-e2e test-images stack-env model \
        up down status logs demo demo-train lambda-zip trainer-wheel contracts bench fuzz lock clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  %-15s %s\n", $$1, $$2}'
	@echo "Variables: HOST=$(HOST) ENDPOINT_PORT=$(ENDPOINT_PORT) API_PORT=$(API_PORT) IMAGES=... DATA=... EPOCHS=$(EPOCHS)"

$(TOX):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -c requirements/tools.txt tox

# The AWS images' Python (3.12) for the serving-image/training-image envs: python3.12 on PATH, else a
# pyenv 3.12 (tox --discover); tox.ini falls back to 3.13, then 3.11, which the tests then report.
PY312 := $(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null || ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 2>/dev/null | tail -1)
TOX_DISCOVER := $(if $(PY312),--discover $(PY312))

test: $(TOX) ## run every test: each service, the Terraform checks, the end-to-end stack and AWS's real toolkits
	$(TOX) run -e lint,client,lambda,trainer,checkov,terraform,stack,serving-image,training-image $(TOX_DISCOVER)

lint: $(TOX) ## run ruff over the repository (ruff.toml)
	$(TOX) run -e lint

test-client: $(TOX) ## run the dogclient tests
	$(TOX) run -e client
test-lambda: $(TOX) ## run the inference Lambda tests
	$(TOX) run -e lambda
test-trainer: $(TOX) ## run the trainer and serving tests
	$(TOX) run -e trainer
test-terraform: $(TOX) ## run fmt, validate, terraform test, checkov and the moto apply/destroy
	$(TOX) run -e checkov,terraform
test-e2e: stack-env ## run the end-to-end tests through the local stack
	$(TOX) run -e stack
test-images: $(SERVICE_ENVS) ## run the artifact in the real TorchServe + SageMaker toolkit stack and the bundle in sagemaker-training
	$(TOX) run -e serving-image,training-image $(TOX_DISCOVER)

stack-env: $(SERVICE_ENVS) ## build the service virtualenvs the local stack runs from (.tox/trainer, lambda, client)
$(SERVICE_ENVS): $(TOX) services/*/pyproject.toml requirements/constraints.txt
	$(TOX) run -e trainer,lambda,client --notest
	@# As in tox.ini: triton is torch's GPU kernel compiler (~900 MB), unused on a CPU.
	$(TRAINER_BIN)/python -m pip uninstall --yes --quiet --quiet triton
	@touch $@

model: $(MODEL) ## build the offline starter model (ImageNet EfficientNet-Lite0 restricted to dog breeds)
$(MODEL): $(SERVICE_ENVS)
	$(TRAINER_BIN)/dogbreed package --pretrained imagenet-dogs --output-dir $(dir $(MODEL))

up: stack-env $(MODEL) ## start the endpoint server and the API front in the background (idempotent)
	@$(STACK) up --model $(MODEL)

down: ## stop what `make up` started
	@$(STACK) down

status: ## show whether the local services run and answer
	@$(STACK) status

logs: ## show the last lines of the local services' logs
	@$(STACK) logs

demo: up ## set up, serve the starter model and classify photos (IMAGES=... to pick your own)
	@images="$(IMAGES)"; \
	if [ -z "$$images" ] && [ -d "$(SAMPLE_PHOTOS)" ]; then images="$(SAMPLE_PHOTOS)"; fi; \
	if [ -z "$$images" ]; then \
	  echo "No photos to classify: pass your own, e.g. make demo IMAGES='path/to/dog.jpg path/to/folder'"; \
	else \
	  echo "== dogclient predict $$images"; \
	  $(CLIENT_BIN)/dogclient predict --api-url $(API_URL) --top-k 3 $$images; \
	fi
	@echo
	@echo "The stack keeps running (make status, make logs, make down). Try it yourself:"
	@echo "  open the web page in a browser: $(API_URL)/"
	@echo "  $(CLIENT_BIN)/dogclient predict --api-url $(API_URL) path/to/dog.jpg"
	@echo "  curl -s $(API_URL)/health"
	@echo "  curl -s -X POST $(API_URL)/predict -H 'Content-Type: image/jpeg' --data-binary @path/to/dog.jpg"

demo-train: stack-env ## fine-tune on DATA=folder, package, serve the new model, print the evaluation
	@test -n "$(DATA)" || { echo "usage: make demo-train DATA=path/to/labelled/photos [EPOCHS=$(EPOCHS)]"; exit 2; }
	@# Frozen backbone + no augmentation: features are computed once, so this takes minutes on a laptop CPU.
	$(TRAINER_BIN)/dogbreed train --data "$(DATA)" --backbone efficientnet_lite0 --weights imagenet \
	  --mode frozen --augmentation none --epochs $(EPOCHS) --output-dir $(RUN_DIR)/trained
	@$(STACK) restart-endpoint --model $(RUN_DIR)/trained/model.tar.gz
	@sed -n '1,/^## Per-breed/p' $(RUN_DIR)/trained/report/report.md

lambda-zip: $(TOX) ## build the Lambda deployment zip (dist/inference_lambda.zip)
	$(TOX) run -e lambda --notest
	.tox/lambda/bin/python services/inference_lambda/build_zip.py

# openapi.json is built from the Lambda's routes, so the generator runs in the lambda env.
contracts: $(TOX) ## regenerate every copy of contracts/api.json (_contract.py modules, openapi.json, README tables)
	$(TOX) run -e lambda --notest
	$(LAMBDA_BIN)/python scripts/gen_contracts.py

trainer-wheel: ## build the trainer wheel for the EC2 trainer host (dist/dogbreed_trainer-*.whl)
	$(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir dist services/trainer

bench: stack-env ## run the benchmarks; results land in bench/results/
	$(TRAINER_BIN)/python bench/bench_train.py
	$(TRAINER_BIN)/python bench/bench_serving.py
	$(TRAINER_BIN)/python bench/bench_starter.py
	$(TRAINER_BIN)/python bench/bench_cli.py
	$(LAMBDA_BIN)/python bench/bench_lambda.py

fuzz: stack-env ## longer Hypothesis fuzzing of every parser and decoder (FUZZ_FACTOR=20); results in bench/results/fuzz.md
	$(PYTHON) bench/fuzz_report.py --factor $(or $(FUZZ_FACTOR),20)

lock: $(TOX) ## re-pin requirements/constraints.txt from the current tox environments
	$(PYTHON) scripts/lock.py

clean: down ## remove virtualenvs, build outputs and local stack state
	rm -rf .venv .tox $(RUN_DIR) dist
