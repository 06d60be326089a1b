/**
 * Shell scripts of the proxy adapters. Constants: every value arrives as a quoted argument ($1, …), never
 * pasted into the text. Each runs as `sh -c SCRIPT sh ARGS…`.
 */

/**
 * Sends haproxy runtime-API commands to its admin socket, one connection each, with curl (`telnet://`
 * over `--unix-socket`: curl sends the line, haproxy answers and closes). Mode `show` prints every answer
 * after an `@@ <command>` line. Mode `set` stops at the first answer that is not a success (empty, or
 * `… changed from …` / `no need to change …` for an address) and prints `ERR <command>: <answer>`
 * (exit 20); when all pass and state-file is set, saves `show servers state` there (temp + rename) for
 * haproxy's `load-server-state-from-file` after a reload or restart.
 * args: socket timeout-seconds mode state-file command…
 */
export const HAPROXY_SCRIPT = `s=$1; to=$2; mode=$3; sf=$4; shift 4
command -v curl >/dev/null 2>&1 || { echo "ERR curl is not installed on the host"; exit 70; }
[ -S "$s" ] || { echo "ERR $s is not a socket (is haproxy running with 'stats socket $s level admin'?)"; exit 71; }
ask() { printf '%s\\n' "$1" | curl -sS --max-time "$to" --unix-socket "$s" telnet://localhost -T - 2>&1; }
for c in "$@"; do
  out=$(ask "$c") || { echo "ERR $c: cannot reach $s: $(printf '%s' "$out" | tail -n 1)"; exit 21; }
  if [ "$mode" = show ]; then echo "@@ $c"; printf '%s\\n' "$out"; continue; fi
  case "$out" in
    ''|*'changed from'*|*'no need to change'*) ;;
    *) echo "ERR $c: $(printf '%s' "$out" | head -n 1)"; exit 20 ;;
  esac
done
if [ "$mode" = set ] && [ -n "$sf" ]; then
  ask 'show servers state' > "$sf.tmp" && mv -f "$sf.tmp" "$sf" || { echo "ERR cannot write $sf"; exit 22; }
fi
echo done
`
