#!/usr/bin/env bash
# Installs every Debian 12 package kpiscale needs to build, test and benchmark.
# Idempotent: packages already present are not fetched again, and a re-run takes about a second.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang clang-format clang-tidy libclang-rt-14-dev
  git ca-certificates
  # libraries
  libcpp-httplib-dev prometheus-cpp-dev libhiredis-dev libpqxx-dev libpq-dev libprotobuf-dev
  protobuf-compiler libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libssl-dev libsnappy-dev libabsl-dev libcli11-dev libyaml-cpp-dev zlib1g-dev
  libbrotli-dev
  # real peers for tests and benchmarks
  redis-server redis-tools postgresql postgresql-contrib prometheus wrk nginx-light haproxy
  openssl curl procps iproute2
  # artifact tests
  python3 python3-yaml python3-jsonschema nodejs
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages (${missing[*]}); run as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kubectl is not in Debian 12; the machines this project runs on provide it. Say so if not.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "install-deps: kubectl not found; the kubectl-driven tests need it on PATH" >&2
  exit 1
fi
