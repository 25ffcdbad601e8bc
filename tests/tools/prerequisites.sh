#!/usr/bin/env bash
# What `make test` needs besides the Python packages, brought up on a fresh machine:
# Debian's Chromium (browser tests) and its emoji font, Node.js (the import page's scripts checked against the
# Python importers), Prosody (XMPP connector tests) and redis-server (scale-profile
# networks start their own), plus the shared PostgreSQL and Redis servers.
# Run by `make test` and `make test-prerequisites`; `.ci/run` calls the same target.
# As root it installs and starts what is missing; otherwise it says what to run.
set -uo pipefail

missing_packages=()
[ -x /usr/bin/chromium ] || missing_packages+=(chromium)
command -v node >/dev/null || missing_packages+=(nodejs)
[ -x /usr/bin/prosody ] || missing_packages+=(prosody)
[ -x /usr/bin/redis-server ] || missing_packages+=(redis-server)
# Emoji in cards and campaign posts (🛒, 🎟️) in the screenshots the browser tests take.
[ -d /usr/share/fonts/truetype/noto ] && ls /usr/share/fonts/truetype/noto/NotoColorEmoji* \
    >/dev/null 2>&1 || missing_packages+=(fonts-noto-color-emoji)

if [ ${#missing_packages[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "Installing ${missing_packages[*]} (Debian packages the tests need)…"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends \
            "${missing_packages[@]}" >/dev/null \
            || echo "Could not install ${missing_packages[*]}: the tests that need them will fail." >&2
    else
        echo "The tests also need: ${missing_packages[*]}." >&2
        echo "  Install them with: sudo apt-get install ${missing_packages[*]}" >&2
    fi
fi

postgres_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! postgres_up && [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null \
        && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start \
        >/dev/null 2>&1 || true
fi
if ! redis_up && command -v redis-server >/dev/null; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp --logfile /tmp/redis-mercato-tests.log >/dev/null 2>&1 || true
fi

if ! postgres_up; then
    echo "PostgreSQL is not answering on 127.0.0.1:5432 (trust auth for user postgres)." >&2
    echo "  Start it with: sudo pg_ctlcluster <version> main start" >&2
    echo "  (Debian: sudo apt-get install postgresql). Tests that need it skip, or fail in CI." >&2
fi
if ! redis_up; then
    echo "Redis is not answering on 127.0.0.1:6379." >&2
    echo "  Start it with: redis-server --daemonize yes --port 6379 --save ''" >&2
    echo "  (Debian: sudo apt-get install redis-server). Tests that need it skip, or fail in CI." >&2
fi
exit 0
