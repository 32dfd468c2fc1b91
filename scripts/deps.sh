#!/bin/sh
# deps.sh: install the Debian packages Postern needs to build, test and demo.
# Installs only what is missing, so a second run costs a few dpkg queries.
set -eu

BUILD="gcc make pkg-config libssl-dev libmariadb-dev libcrypt-dev libcap-dev"
TEST="mariadb-server mariadb-client python3 python3-pytest openssl swaks procps iproute2 psmisc clang libclang-rt-14-dev whois fail2ban pflogsumm libnet-ssleay-perl isync getmail6 mutt git-email"
PACKAGE="debhelper rpm lintian debootstrap fakeroot"

missing=""
for p in $BUILD $TEST $PACKAGE; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages:$missing (run as root to install)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only if an install from the cached lists fails.
if ! apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1; then
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
