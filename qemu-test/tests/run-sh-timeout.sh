#!/usr/bin/env bash
# Host test of selftests/run.sh's per-test timeout: a test that outlives its
# "# rfl-timeout: N" header, or RFL_TEST_TIMEOUT, is "not ok ... timeout
# after N s", its background children are stopped with it, the suite goes
# on, and the run exits 1; each test is bracketed by rfl-test markers;
# VAR=VALUE items set the environment of the tests after them.
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
# VAR=VALUE items: the environment of the tests after them (a later one for
# the same variable replaces it), named in the TAP line; --limits skips them.
echo 'echo "drv=${RFL_T_DRV:-unset} x=${RFL_T_X:-unset}"' > "$tmp/suite/05-env.sh"
RFL_KMSG="$tmp/kmsg2" "$top/selftests/run.sh" "$tmp/suite/05-env.sh" RFL_T_DRV=a RFL_T_X=1 "$tmp/suite/05-env.sh" \
    RFL_T_DRV=b "$tmp/suite/05-env.sh" > "$tmp/tap2" 2>&1 || bad "run.sh with VAR=VALUE items exited non-zero: $(cat "$tmp/tap2")"
grep -qx '# drv=unset x=unset' "$tmp/tap2" && grep -qx '# drv=a x=1' "$tmp/tap2" && grep -qx '# drv=b x=1' "$tmp/tap2" ||
    bad "VAR=VALUE items did not set the following tests' environment: $(cat "$tmp/tap2")"
grep -q '^ok 1 suite/05-env #' "$tmp/tap2" && grep -q '^ok 2 suite/05-env RFL_T_DRV=a RFL_T_X=1 #' "$tmp/tap2" &&
    grep -q '^ok 3 suite/05-env RFL_T_X=1 RFL_T_DRV=b #' "$tmp/tap2" || bad "tests are not named with their environment: $(cat "$tmp/tap2")"
[ "$("$top/selftests/run.sh" --limits RFL_T_DRV=a "$tmp/suite/05-env.sh" | wc -l)" = 1 ] || bad "--limits lists VAR=VALUE items"
RFL_KMSG="$tmp/kmsg3" "$top/selftests/run.sh" 'RFL_T_DRV=a b' 'RFL_T_X=-i' "$tmp/suite/05-env.sh" > "$tmp/tap3" 2>&1 &&
    grep -qx '# drv=a b x=-i' "$tmp/tap3" || bad "a VAR=VALUE value with a space or a leading dash is not passed whole: $(cat "$tmp/tap3")"
[ $failures = 0 ] && echo "run.sh: per-test timeouts (header and RFL_TEST_TIMEOUT) reported, children stopped, the suite goes on (${took}s)"
exit $((failures > 0))
