#!/bin/sh
# Test dependencies, listed once. Installs what is missing with apt-get when run as root;
# otherwise prints the exact command and fails. Build and run need only a C compiler and make.
set -e
PKGS="libcriterion-dev pkg-config clang libclang-rt-14-dev python3 curl nginx-light wrk \
apache2-utils haproxy h2o libcurl4-openssl-dev iproute2 procps chromium openssl"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    exit 0
fi
echo "deps: missing test dependencies; run as root:"
echo "  apt-get install -y$missing"
exit 1
