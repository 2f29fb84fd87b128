#!/usr/bin/env bash
# Host test of selftests/run.sh's per-test timeout: a test that outlives its
# "# rfl-timeout: N" header, or RFL_TEST_TIMEOUT, is "not ok ... timeout
# after N s", its background children are stopped with it, the suite goes
# on, and the run exits 1; each test is bracketed by rfl-test markers.
# (run.sh is plain bash: the same script runs inside the guest.)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
failures=0
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }

mkdir "$tmp/suite"
cat > "$tmp/suite/01-header.sh" <<EOF
# rfl-timeout: 2
echo started
sleep 60 &
echo \$! > "$tmp/child.pid"
wait
echo not reached
EOF
cat > "$tmp/suite/02-passes.sh" <<'EOF'
echo passes
EOF
cat > "$tmp/suite/03-default.sh" <<'EOF'
sleep 60
EOF
cat > "$tmp/suite/04-exit-124.sh" <<'EOF'
# rfl-timeout: 30
exit 124
EOF
start=$SECONDS
RFL_TEST_TIMEOUT=3 RFL_KMSG="$tmp/kmsg" "$top/selftests/run.sh" "$tmp/suite" > "$tmp/tap" 2>&1
st=$?
took=$((SECONDS - start))
cat "$tmp/tap"
[ $st = 1 ] || bad "run.sh exited $st, want 1"
grep -qx 'not ok 1 suite/01-header # timeout after 2 s' "$tmp/tap" || bad "the header timeout is not reported"
grep -qx '# not reached' "$tmp/tap" && bad "the timed-out test went on"
grep -q '^ok 2 suite/02-passes' "$tmp/tap" || bad "the suite did not go on after a timeout"
grep -qx 'not ok 3 suite/03-default # timeout after 3 s' "$tmp/tap" || bad "RFL_TEST_TIMEOUT is not applied"
grep -q '^not ok 4 suite/04-exit-124 # exit 124 after' "$tmp/tap" || bad "a test exiting 124 quickly is called a timeout"
[ "$took" -lt 25 ] || bad "the suite took ${took}s: the timeouts did not stop the tests"
if [ -f "$tmp/child.pid" ] && kill -0 "$(cat "$tmp/child.pid")" 2>/dev/null; then
    bad "the timed-out test's background child is still running"
    kill "$(cat "$tmp/child.pid")"
fi
grep -qx 'rfl-test: begin suite/01-header' "$tmp/kmsg" && grep -qx 'rfl-test: end suite/01-header 124' "$tmp/kmsg" ||
    bad "no rfl-test markers around the test: $(cat "$tmp/kmsg")"
[ $failures = 0 ] && echo "run.sh: per-test timeouts (header and RFL_TEST_TIMEOUT) reported, children stopped, the suite goes on (${took}s)"
exit $((failures > 0))
