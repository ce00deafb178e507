#!/bin/sh
# Build dependencies (beyond a C compiler and make), listed once: OpenSSL 3 headers and
# libraries (Debian: libssl-dev). Run by the Makefile before the first compile. Installs what
# is missing with apt-get when run as root; otherwise prints the exact command and fails.
set -e
CC=${CC:-cc}
PKGS="libssl-dev"
have_ssl() {
    printf '#include <openssl/ssl.h>\n#if OPENSSL_VERSION_MAJOR < 3\n#error old\n#endif\n' |
        $CC -E -x c - >/dev/null 2>&1
}
have_ssl && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "builddeps: installing $PKGS"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
    have_ssl && exit 0
fi
echo "builddeps: OpenSSL 3 development files are missing; run as root:"
echo "  apt-get install -y $PKGS"
exit 1
