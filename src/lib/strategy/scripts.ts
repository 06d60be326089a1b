/**
 * Shell scripts of the blue-green strategy. Constants: every value arrives as a quoted argument ($1, …),
 * never pasted into the text. Each runs as `sh -c SCRIPT sh ARGS…`.
 */

/** Prints the live slot (`slot blue|green|`) and the host's MemAvailable in kB. args: state-dir */
export const PROBE_SCRIPT = `s=$1
slot=$(head -n 1 "$s/slot" 2>/dev/null | head -c 100) || slot=
echo "slot $slot"
echo "memavail $(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null)"
`

/**
 * Stops and removes the containers of some services of one Compose project (a slot, or the project a
 * recreate deploy ran): \`docker stop -t grace\` lets the app finish what it is doing, then \`docker rm\`.
 * args: grace project service…
 */
export const STOP_SCRIPT = `g=$1; p=$2; shift 2
rc=0
for svc in "$@"; do
  ids=$(docker ps -aq --filter "label=com.docker.compose.project=$p" --filter "label=com.docker.compose.service=$svc")
  [ -z "$ids" ] && continue
  docker stop -t "$g" $ids >/dev/null || rc=1
  docker rm -f $ids >/dev/null || rc=1
  echo "stopped $p/$svc"
done
exit $rc
`

/**
 * Stops the old slot's containers after the switch and keeps them (stopped: no memory, no port), recording
 * which release they hold, so a rollback to it starts them again instead of creating new ones (WAKE_SCRIPT).
 * args: grace state-dir slot release-id project service…
 */
export const KEEP_SCRIPT = `g=$1; s=$2; slot=$3; rel=$4; p=$5; shift 5
rc=0
rm -f "$s/kept"
for svc in "$@"; do
  ids=$(docker ps -aq --filter "label=com.docker.compose.project=$p" --filter "label=com.docker.compose.service=$svc")
  [ -z "$ids" ] && continue
  docker stop -t "$g" $ids >/dev/null || rc=1
  echo "stopped $p/$svc (kept for a rollback)"
done
[ $rc = 0 ] && printf '%s %s\n' "$slot" "$rel" > "$s/kept.tmp" && mv -f "$s/kept.tmp" "$s/kept"
exit $rc
`

/**
 * Starts the kept containers of a slot when they hold the release asked for, after the memory check (their
 * own memory limits, at least min-bytes, against MemAvailable). Containers kept warm (`keep-previous-warm`:
 * still running) need neither. Prints \`woken\` (\`woken warm\` when they were running already), or \`cold
 * <why>\` and \`memavail <kB>\` when the release has to be started the usual way; a slot kept warm for another
 * release is stopped first then, so the memory check counts what it held.
 * args: state-dir slot release-id min-bytes project service…
 */
export const WAKE_SCRIPT = `s=$1; slot=$2; rel=$3; min=$4; p=$5; shift 5
kept=$(head -n 1 "$s/kept" 2>/dev/null | head -c 300)
warm=$(sed -n 2p "$s/kept" 2>/dev/null | head -c 300)
cold() {
  # the record goes: a cold start recreates the slot's containers
  rm -f "$s/kept"
  case "$warm" in
    "warm "*)
      for svc in "$@"; do
        ids=$(docker ps -q --filter "label=com.docker.compose.project=$p" --filter "label=com.docker.compose.service=$svc")
        [ -n "$ids" ] && docker stop -t 10 $ids >/dev/null
      done ;;
  esac
  echo "memavail $(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null)"
}
[ "$kept" = "$slot $rel" ] || { echo "cold not kept"; cold "$@"; exit 0; }
all=
for svc in "$@"; do
  ids=$(docker ps -aq --filter "label=com.docker.compose.project=$p" --filter "label=com.docker.compose.service=$svc")
  [ -n "$ids" ] || { echo "cold $svc missing"; cold "$@"; exit 0; }
  all="$all $ids"
done
run=$(docker inspect -f '{{.State.Running}}' $all) || run=false
# kept warm: used as they run, and the record stays (its timer ends the window should they not go live;
# once the slot is live, the timer leaves it)
if [ -z "$(printf '%s\\n' "$run" | grep -v '^true$')" ]; then echo "woken warm"; exit 0; fi
rm -f "$s/kept"
# sums in the shell's 64-bit arithmetic (mawk prints large numbers as 2.1e+10)
need=0
for m in $(docker inspect -f '{{.HostConfig.Memory}}' $all); do need=$((need + m)); done
[ "$need" -ge "$min" ] || need=$min
kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null)
if [ -n "$kb" ] && [ $((kb * 1024)) -lt "$need" ]; then echo "cold memory $((kb * 1024)) < $need"; cold "$@"; exit 0; fi
docker start $all >/dev/null || { echo "ERR docker start failed"; exit 1; }
echo woken
`

/**
 * \`keep-previous-warm\`: wraps the close step's cut-over. After the switch succeeded, records the old slot as
 * kept warm (\`<slot> <release>\` and \`warm <token>\` in <state>/kept) and starts WARM_TIMER_SCRIPT detached on
 * the host, so the window ends even when the runner is gone. A failed switch changes nothing here.
 * args: state-dir slot release-id token seconds grace project timer-script count service… cut-over argv…
 */
export const WARM_SCRIPT = `s=$1; slot=$2; rel=$3; tok=$4; w=$5; g=$6; p=$7; timer=$8; n=$9; shift 9
svcs=
while [ "$n" -gt 0 ]; do svcs="$svcs $1"; shift; n=$((n - 1)); done
"$@" || exit $?
{ printf '%s %s\\nwarm %s\\n' "$slot" "$rel" "$tok" > "$s/kept.tmp" && mv -f "$s/kept.tmp" "$s/kept"; } || { echo "warn: cannot write $s/kept: the $slot slot is not kept warm"; exit 0; }
if command -v setsid >/dev/null 2>&1; then set -- setsid; else set --; fi
"$@" sh -c "$timer" sh "$s" "$slot" "$rel" "$tok" "$w" "$g" "$p" $svcs </dev/null >/dev/null 2>&1 &
echo "warm $slot $w"
`

/**
 * Ends a warm window (detached on the host, started by WARM_SCRIPT): after the window, under the deploy lock
 * (so never beside a deploy or rollback), stops the slot's containers and keeps them stopped for a rollback
 * (<state>/kept back to \`<slot> <release>\`) unless the record is no longer its own (a deploy woke or replaced
 * the slot) or the slot is live. args: state-dir slot release-id token seconds grace project service…
 */
export const WARM_TIMER_SCRIPT = `s=$1; slot=$2; rel=$3; tok=$4; w=$5; g=$6; p=$7; shift 7
sleep "$w"
exec 9>>"$s/lock" 2>/dev/null || exit 0
flock -w 3600 9 || exit 0
[ "$(sed -n 2p "$s/kept" 2>/dev/null)" = "warm $tok" ] || exit 0
[ "$(head -n 1 "$s/kept" 2>/dev/null)" = "$slot $rel" ] || exit 0
live=$(head -n 1 "$s/slot" 2>/dev/null | cut -d' ' -f1)
[ "$live" != "$slot" ] || { rm -f "$s/kept"; exit 0; }
printf '%s\\n' "shipline: end of the warm window of the $slot slot" > "$s/lock.owner"
rc=0
for svc in "$@"; do
  ids=$(docker ps -q --filter "label=com.docker.compose.project=$p" --filter "label=com.docker.compose.service=$svc")
  [ -z "$ids" ] && continue
  docker stop -t "$g" $ids >/dev/null || rc=1
done
if [ $rc = 0 ]; then printf '%s %s\\n' "$slot" "$rel" > "$s/kept.tmp" && mv -f "$s/kept.tmp" "$s/kept"; else rm -f "$s/kept"; fi
rm -f "$s/lock.owner"
`

/**
 * Moves nginx to a slot in one step: saves the upstream files, writes the new ones (temp + rename), runs
 * the user's test command, then the reload; when either fails the saved files go back (and the reload runs
 * again after a failed reload), and nothing else changes. Then records the live slot (unless slot-file is
 * empty). An empty reload-command is a dry run: the files go back after the test whatever its outcome.
 * Used by the blue-green strategy and the nginx proxy adapter (src/lib/proxy/nginx.ts).
 * args: include-dir test-command reload-command slot-file slot-line [file-name content]…
 */
export const NGINX_SWITCH_SCRIPT = `d=$1; t=$2; rl=$3; sf=$4; sl=$5; shift 5
mkdir -p "$d" || { echo "ERR cannot create $d"; exit 70; }
bk=$(mktemp -d) || exit 71
trap 'rm -rf "$bk"' EXIT
names=
putback() { for n in $names; do if [ -f "$bk/$n.absent" ]; then rm -f "$d/$n"; else cp -p "$bk/$n" "$d/$n"; fi; done; }
while [ $# -ge 2 ]; do
  n=$1; c=$2; shift 2
  names="$names $n"
  if [ -f "$d/$n" ]; then cp -p "$d/$n" "$bk/$n"; else : > "$bk/$n.absent"; fi
  printf '%s' "$c" > "$d/$n.tmp" && mv -f "$d/$n.tmp" "$d/$n" || { putback; echo "ERR cannot write $d/$n"; exit 72; }
done
if ! out=$(sh -c "$t" 2>&1); then putback; echo "ERR nginx test '$t' failed: $(printf '%s' "$out" | tail -n 1)"; exit 11; fi
if [ -z "$rl" ]; then putback; echo "tested"; exit 0; fi
if ! out=$(sh -c "$rl" 2>&1); then putback; sh -c "$rl" >/dev/null 2>&1; echo "ERR nginx reload '$rl' failed: $(printf '%s' "$out" | tail -n 1)"; exit 12; fi
[ -z "$sf" ] || { printf '%s\\n' "$sl" > "$sf.tmp" && mv -f "$sf.tmp" "$sf"; } || { echo "ERR cannot write $sf"; exit 73; }
echo "switched"
`

/**
 * A proxy adapter's switch (haproxy, caddy: its argv, which puts the previous routing back itself when it
 * fails), then the live slot recorded; nginx has NGINX_SWITCH_SCRIPT, which records it itself.
 * args: slot-file slot-line argv…
 */
export const PROXY_SWITCH_SCRIPT = `sf=$1; sl=$2; shift 2
"$@" || exit $?
printf '%s\\n' "$sl" > "$sf.tmp" && mv -f "$sf.tmp" "$sf" || { echo "ERR cannot write $sf"; exit 73; }
echo "switched"
`
