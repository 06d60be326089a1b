/**
 * The Compose runtime's shell scripts (images, health). Constants: every value reaches them as a quoted
 * argument ($1, $2, …) or on stdin, never pasted into the script text. Each runs as `sh -c SCRIPT sh ARGS…`.
 * The release store's own scripts (lock, journal, close) are in src/lib/release/scripts.ts.
 */

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
