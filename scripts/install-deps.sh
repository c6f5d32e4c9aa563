#!/usr/bin/env bash
# Installs every build and test dependency of pprofd from Debian 12 packages.
# Idempotent: packages already present are not reinstalled; apt runs only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates curl
  libboost1.81-dev libboost-url1.81-dev
  libssl-dev zlib1g-dev libdeflate-dev
  libprotobuf-dev protobuf-compiler
  nlohmann-json3-dev prometheus-cpp-dev libspdlog-dev libyaml-cpp-dev catch2
  clang-format openssl procps
  # A real Kubernetes client library checks that tests/support/fake_apiserver.py speaks the real
  # protocol; python3-yaml reads the deployment manifests in tests.
  python3-kubernetes python3-yaml
)
# Go builds the demo and test target programs only; any Go already on PATH is fine.
command -v go >/dev/null 2>&1 || packages+=(golang-go)
# kubectl, for the fake API server's self-test; some images ship their own, which conflicts.
command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
# Tests scrape our /metrics with a real Prometheus and check the exposition with promtool.
[ "${PPROFD_SKIP_PROMETHEUS:-0}" = 1 ] || packages+=(prometheus)
# `scripts/install-deps.sh --bench`: bench/run.sh also plots its scale curve.
[ "${1:-}" = "--bench" ] && packages+=(python3-matplotlib)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# libboost1.81-dev conflicts with the default 1.74 headers; apt removes those on its own.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
