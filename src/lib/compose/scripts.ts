/**
 * The shell scripts shipline runs on a host. They are constants: every value reaches them as a quoted
 * argument ($1, $2, …) or on stdin, never pasted into the script text. Each runs as `sh -c SCRIPT sh ARGS…`.
 */

/**
 * Lock holder and state probe, in one long-lived command on its own SSH channel.
 * args: state-dir lock-timeout token owner
 * It takes `flock` on <state>/lock (waiting up to lock-timeout), prints LOCKED, the host's state (compose
 * flavour, current release, releases' metadata, the ledger's tail), READY, then one byte every 0.2 s. The
 * lock lives as long as this process: it ends when the deploy writes run/<token>/release, or when a write
 * fails because the SSH channel is gone (job killed or cancelled, network lost). In that case it first
 * runs run/<token>/recover.sh (put the previous release back) after any running step, then removes
 * run/<token> (temporary Docker config included) and lets the lock go.
 */
export const LOCK_SCRIPT = `trap '' HUP PIPE
umask 077
s=$1; t=$2; tok=$3; owner=$4
mkdir -p "$s/releases" "$s/run" || { echo "ERR cannot create $s"; exit 71; }
chmod 700 "$s" "$s/run"
command -v flock >/dev/null 2>&1 || { echo "ERR flock is missing on the host (package util-linux)"; exit 72; }
exec 9>>"$s/lock" || { echo "ERR cannot open $s/lock"; exit 73; }
if ! flock -n 9; then
  echo "WAITING $(cat "$s/lock.owner" 2>/dev/null | head -c 300)"
  flock -w "$t" 9 || { echo "ERR timeout"; exit 75; }
fi
r="$s/run/$tok"
mkdir -p "$r" || exit 74
printf '%s\\n' "$owner" > "$s/lock.owner"
for d in "$s"/run/*; do [ "$d" = "$r" ] || rm -rf "$d"; done
echo LOCKED
if docker compose version >/dev/null 2>&1 9>&-; then echo "compose v2"
elif command -v docker-compose >/dev/null 2>&1; then echo "compose v1"
else echo "compose none"; fi
c=$(readlink "$s/current" 2>/dev/null) || c=
echo "current \${c##*/}"
for d in "$s"/releases/*; do
  [ -f "$d/release.json" ] || continue
  printf 'release %s ' "\${d##*/}"; tr -d '\\n' < "$d/release.json"; echo
done
[ -f "$s/ledger.jsonl" ] && tail -n 200 "$s/ledger.jsonl" | sed 's/^/ledger /'
echo READY
while printf .; do
  [ -e "$r/release" ] && break
  sleep 0.2 9>&- 2>/dev/null || sleep 1 9>&-
done
if [ -f "$r/recover.sh" ]; then
  flock "$r/step" sh "$r/recover.sh" </dev/null >"$s/recover.log" 2>&1 9>&-
fi
rm -rf "$r"
rm -f "$s/lock.owner"
exit 0
`

/**
 * Writes a release folder from a tar on stdin (umask 077: nothing in it is readable by others), after
 * copying the previous release's .env when asked. args: release-dir previous-env-or-empty
 */
export const UPLOAD_SCRIPT = `umask 077
d=$1; from=$2
mkdir -p "$d" || exit 70
if [ -n "$from" ]; then cp -p "$from" "$d/.env" || exit 71; fi
tar -xf - -C "$d"
`

/**
 * Brings images onto the host: those already present are left alone (no registry needed), the rest are
 * pulled, after a login into a temporary Docker config when a registry is given (password on stdin).
 * The temporary config is removed on every exit path.
 * args: config-dir registry username ref…   stdin: the registry password (or nothing)
 */
export const IMAGES_SCRIPT = `umask 077
cfg=$1; reg=$2; user=$3; shift 3
trap 'rm -rf "$cfg"' EXIT
missing=
for r in "$@"; do
  if docker image inspect "$r" >/dev/null 2>&1; then echo "present $r"; else missing="$missing $r"; fi
done
[ -z "$missing" ] && exit 0
if [ -n "$reg" ]; then
  mkdir -p "$cfg" && chmod 700 "$cfg" || exit 70
  docker --config "$cfg" login --username "$user" --password-stdin "$reg" >/dev/null || { echo "ERR login to $reg failed"; exit 3; }
  export DOCKER_CONFIG="$cfg"
fi
for r in $missing; do
  echo "pull $r"
  docker pull "$r" </dev/null >/dev/null || { echo "ERR pull $r failed"; exit 4; }
done
`

/**
 * Runs one step that changes containers, under the step lock (so a recovery waits for it), after writing
 * stdin to the recovery script (or removing it when stdin is empty).
 * args: run-dir command…   stdin: recover.sh text
 */
export const STEP_SCRIPT = `r=$1; shift
mkdir -p "$r" || exit 70
cat > "$r/recover.sh.tmp" && if [ -s "$r/recover.sh.tmp" ]; then mv -f "$r/recover.sh.tmp" "$r/recover.sh"; else rm -f "$r/recover.sh.tmp"; fi
exec flock "$r/step" "$@"
`

/**
 * Waits until every container of the given services is healthy: its healthcheck says healthy, or without
 * one it is running with the same start time and restart count for <stable> seconds (a one-shot container
 * that exited 0 counts as done). Fails at once on unhealthy / non-zero exit / dead, or at the deadline; then
 * prints the last <tail> log lines of each failing container.
 * args: timeout stable project tail service…
 */
export const HEALTH_SCRIPT = `t=$1; stable=$2; p=$3; n=$4; shift 4
services="$*"
end=$(( $(date +%s) + t ))
tmp=$(mktemp -d) || exit 70
trap 'rm -rf "$tmp"' EXIT
last=
while :; do
  now=$(date +%s)
  report=; pending=; failed=
  for svc in $services; do
    ids=$(docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$p" --filter "label=com.docker.compose.service=$svc" --filter "label=com.docker.compose.oneoff=False")
    if [ -z "$ids" ]; then pending="$pending $svc"; report="$report $svc=missing"; continue; fi
    for id in $ids; do
      info=$(docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.RestartCount}} {{.State.StartedAt}} {{.State.ExitCode}}' "$id" 2>/dev/null) || { pending="$pending $svc:$id"; continue; }
      set -- $info
      st=$1; hl=$2; rc=$3; sa=$4; ec=$5
      v=wait
      case "$st" in
        running)
          case "$hl" in
            healthy) v=ok ;;
            unhealthy) v=fail ;;
            starting) v=wait ;;
            *)
              key="$rc $sa"; f="$tmp/$id"
              if [ -f "$f" ] && [ "$(sed -n 1p "$f")" = "$key" ]; then since=$(sed -n 2p "$f"); else printf '%s\\n%s\\n' "$key" "$now" > "$f"; since=$now; fi
              if [ $((now - since)) -ge "$stable" ]; then v=ok; fi ;;
          esac ;;
        exited) if [ "$ec" = 0 ] && [ "$hl" = none ]; then v=ok; else v=fail; fi ;;
        created|restarting) v=wait ;;
        *) v=fail ;;
      esac
      short=$(printf '%.12s' "$id")
      report="$report $svc/$short=$st/$hl/restarts:$rc"
      [ "$v" = fail ] && failed="$failed $svc:$id"
      [ "$v" = wait ] && pending="$pending $svc:$id"
    done
  done
  if [ "$report" != "$last" ]; then echo "state$report"; last=$report; fi
  if [ -n "$failed" ]; then result=failed; break; fi
  if [ -z "$pending" ]; then result=healthy; break; fi
  if [ "$now" -ge "$end" ]; then result=timeout; failed=$pending; break; fi
  sleep 0.5 2>/dev/null || sleep 1
done
echo "result $result$failed"
for x in $failed; do
  svc=\${x%%:*}; id=\${x#*:}
  [ "$id" = "$x" ] && continue
  echo "logs $svc $(printf '%.12s' "$id")"
  docker logs --tail "$n" "$id" 2>&1 | sed 's/^/| /'
done
[ "$result" = healthy ]
`

/**
 * Makes a release current: symlink to a temp name, renamed over `current` (atomic), then one ledger line
 * from stdin appended. args: state-dir release-id
 */
export const SWITCH_SCRIPT = `s=$1; id=$2
[ -d "$s/releases/$id" ] || { echo "ERR no release $id"; exit 2; }
ln -sfn "releases/$id" "$s/current.tmp" && mv -fT "$s/current.tmp" "$s/current" || exit 3
cat >> "$s/ledger.jsonl"
`

/** Appends stdin to the ledger. args: state-dir */
export const LEDGER_SCRIPT = `cat >> "$1/ledger.jsonl"`

/**
 * Ends a deploy on a host: removes the recovery script, incomplete release folders, pruned releases and
 * the images only they needed (never with -f: an image a container still uses stays), then lets the
 * lock go. args: state-dir token release-id… --images ref…
 */
export const FINISH_SCRIPT = `s=$1; tok=$2; shift 2
rm -f "$s/run/$tok/recover.sh"
mode=release
for a in "$@"; do
  if [ "$a" = --images ]; then mode=image; continue; fi
  if [ "$mode" = release ]; then rm -rf "$s/releases/$a" && echo "pruned $a"
  else docker image rm "$a" >/dev/null 2>&1 && echo "removed $a"; fi
done
for d in "$s"/releases/*; do
  [ -d "$d" ] && [ ! -f "$d/release.json" ] && [ "$d" != "$s/releases/*" ] && rm -rf "$d"
done
mkdir -p "$s/run/$tok" && touch "$s/run/$tok/release"
`
