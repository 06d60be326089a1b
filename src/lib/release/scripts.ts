/**
 * The release store's shell scripts. Constants: every value reaches them as a quoted argument ($1, $2, …)
 * or on stdin, never pasted into the script text. Each runs as `sh -c SCRIPT sh ARGS…`.
 *
 * Appends to the journal go through `jadd` (defined in each script that appends): when the file does not
 * end with a newline (a torn last line), a newline is written first, so a new entry is never glued onto
 * the damaged one.
 */

const JADD = `jadd() { if [ -s "$1" ] && [ -n "$(tail -c 1 "$1")" ]; then echo >> "$1"; fi; cat >> "$1"; }`

/**
 * Lock holder and state read, in one long-lived command on its own SSH channel.
 * args: state-dir lock-timeout token owner
 * Takes `flock` on <state>/lock (waiting up to lock-timeout), prints LOCKED, the host's facts (compose
 * flavour), the current release, every release's metadata, the journal's tail (always ending with a
 * newline, torn or not), READY, then one byte every 0.2 s. It ends when the deploy writes run/<token>/done,
 * or when a write fails because the SSH channel is gone (job killed or cancelled, network lost). Either way
 * it then closes the transaction left open, under the step lock (so after any step still running):
 * run/<token>/recover.sh (put the previous release back, journal `recovered`) when it is armed, else the
 * `aborted` entry of run/<token>/abort.json. Then it removes run/<token> and lets the lock go.
 */
export const LOCK_SCRIPT = `trap '' HUP PIPE
umask 077
s=$1; t=$2; tok=$3; owner=$4
${JADD}
if [ -L "$s" ]; then echo "ERR $s is a symbolic link: shipline keeps its state in a folder of its own; remove the link (or move its target there)"; exit 76; fi
mkdir -p "$s" || { echo "ERR cannot create $s"; exit 71; }
if [ "$(stat -c %u "$s" 2>/dev/null)" != "$(id -u)" ]; then echo "ERR $s is not owned by the SSH user $(id -un): chown it to that user (or deploy as its owner)"; exit 77; fi
for d in "$s/releases" "$s/run"; do
  if [ -L "$d" ]; then echo "ERR $d is a symbolic link: remove it"; exit 76; fi
done
mkdir -p "$s/releases" "$s/run" || { echo "ERR cannot create $s"; exit 71; }
chmod 700 "$s" "$s/run"
command -v flock >/dev/null 2>&1 || { echo "ERR flock is missing on the host (package util-linux)"; exit 72; }
exec 9>>"$s/lock" || { echo "ERR cannot open $s/lock"; exit 73; }
if ! flock -n 9; then
  echo "WAITING $(head -c 300 "$s/lock.owner" 2>/dev/null | tr -d '\\n')"
  flock -w "$t" 9 || { echo "ERR timeout"; exit 75; }
fi
r="$s/run/$tok"
mkdir -p "$r" || { echo "ERR cannot create $r"; exit 74; }
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
  printf 'release %s ' "\${d##*/}"; head -c 65536 "$d/release.json" | tr -d '\\n'; echo
done
if [ -f "$s/ledger.jsonl" ]; then tail -n 200 "$s/ledger.jsonl" | sed 's/^/ledger /'; echo; fi
echo READY
while printf .; do
  [ -e "$r/done" ] && break
  sleep 0.2 9>&- 2>/dev/null || sleep 1 9>&-
done
exec 7>>"$r/step" && flock -w 1800 7
if [ -f "$r/recover.sh" ]; then sh "$r/recover.sh" </dev/null >"$s/recover.log" 2>&1 7>&- 9>&-
elif [ -f "$r/abort.json" ]; then
  { printf '{"time":"%s",' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"; cat "$r/abort.json"; } | jadd "$s/ledger.jsonl"
fi
exec 7>&-
rm -rf "$r"
rm -f "$s/lock.owner"
exit 0
`

/**
 * Opens a transaction (write-ahead): appends the `begin` entry (stdin line 1) and keeps the entry that
 * closes it should the runner go away before anything live changed (stdin line 2, without its time, as
 * run/<token>/abort.json). args: state-dir token
 */
export const BEGIN_SCRIPT = `s=$1; r="$s/run/$2"
${JADD}
IFS= read -r begin && IFS= read -r abort || { echo "ERR incomplete input"; exit 2; }
printf '%s\\n' "$abort" > "$r/abort.json.tmp" && mv -f "$r/abort.json.tmp" "$r/abort.json" || exit 3
printf '%s\\n' "$begin" | jadd "$s/ledger.jsonl" || exit 4
`

/**
 * Writes a release folder from a tar on stdin (umask 077: nothing in it is readable by others), after
 * copying the previous release's .env when asked. args: release-dir previous-env-or-empty
 */
export const UPLOAD_SCRIPT = `umask 077
d=$1; from=$2
if [ -e "$d" ] && [ ! -d "$d" ]; then echo "ERR $d exists and is not a folder"; exit 69; fi
mkdir -p "$d" || exit 70
if [ -n "$from" ]; then cp -p "$from" "$d/.env" || { echo "ERR cannot copy $from"; exit 71; }; fi
tar -xf - -C "$d" || exit 72
# env/env-secrets without an env-file: their lines replace the same keys in the copy of the live .env
if [ -f "$d/.env.overlay" ]; then
  touch "$d/.env"
  awk 'function key(l) { if (l !~ /^[ \t]*(export[ \t]+)?[A-Za-z_][A-Za-z0-9_.-]*[ \t]*=/) return ""; sub(/^[ \t]*(export[ \t]+)?/, "", l); sub(/[ \t]*=.*$/, "", l); return l }
       NR == FNR { k = key($0); if (k != "") o[k] = 1; next }
       { k = key($0); if (k != "" && (k in o)) next; print }' "$d/.env.overlay" "$d/.env" > "$d/.env.tmp" &&
    cat "$d/.env.overlay" >> "$d/.env.tmp" && mv -f "$d/.env.tmp" "$d/.env" && rm -f "$d/.env.overlay" ||
    { echo "ERR cannot merge env into $d/.env"; exit 73; }
fi
`

/**
 * Runs one step that changes containers, under the step lock (so a recovery waits for it), after arming
 * stdin as the recovery script (or keeping the armed one when stdin is empty).
 * args: run-dir command…   stdin: recover.sh text
 */
export const STEP_SCRIPT = `r=$1; shift
[ -d "$r" ] || { echo "ERR the deploy's run folder $r is gone (the lock was lost)"; exit 70; }
cat > "$r/recover.sh.tmp" && if [ -s "$r/recover.sh.tmp" ]; then mv -f "$r/recover.sh.tmp" "$r/recover.sh"; else rm -f "$r/recover.sh.tmp"; fi
exec flock "$r/step" "$@"
`

/**
 * Closes a transaction, in one step that a lost link cannot cut in half (HUP and PIPE ignored, under the
 * step lock): reads the final entry (stdin, one line), runs the runtime's cut-over command when one is
 * given (blue-green: nginx to the new slot; on its failure nothing is switched), points `current` at the
 * release (atomically: symlink to a temp name, renamed over `current`; '' leaves it), appends the entry,
 * and disarms the recovery. args: state-dir token release-id-or-empty [cut-over command…]
 */
export const CLOSE_SCRIPT = `trap '' HUP PIPE
s=$1; r="$s/run/$2"; id=$3; shift 3
${JADD}
[ -d "$r" ] || { echo "ERR the deploy's run folder $r is gone (the lock was lost)"; exit 70; }
exec 8>>"$r/step"; flock -w 600 8 || { echo "ERR a recovery holds the step lock"; exit 71; }
IFS= read -r entry || { echo "ERR incomplete entry"; exit 2; }
if [ -n "$id" ]; then
  [ -f "$s/releases/$id/release.json" ] || { echo "ERR release folder $s/releases/$id is missing or incomplete"; exit 3; }
fi
if [ -n "$id" ]; then
  # the new pointer is made before the cut-over: when it cannot be, nothing has switched yet
  rm -rf "$s/current.tmp" 2>/dev/null
  ln -sfn "releases/$id" "$s/current.tmp" || { echo "ERR cannot point $s/current at $id"; exit 4; }
fi
if [ $# -gt 0 ]; then
  "$@" 8>&- || { rc=$?; rm -f "$s/current.tmp"; echo "ERR cut-over failed (exit $rc)"; exit 10; }
fi
if [ -n "$id" ]; then
  mv -fT "$s/current.tmp" "$s/current" || { echo "ERR cannot point $s/current at $id"; exit 4; }
fi
printf '%s\\n' "$entry" | jadd "$s/ledger.jsonl" || { echo "ERR cannot append to $s/ledger.jsonl"; exit 5; }
rm -f "$r/recover.sh" "$r/abort.json"
echo OK
`

/**
 * Ends the lock: removes pruned releases and the images only they needed (never with -f: an image a
 * container still uses stays), incomplete release folders, then marks the run done so the lock holder
 * lets the lock go (closing any transaction still open first). args: state-dir token release-id… --images ref…
 */
export const FINISH_SCRIPT = `s=$1; tok=$2; shift 2
mode=release
for a in "$@"; do
  if [ "$a" = --images ]; then mode=image; continue; fi
  if [ "$mode" = release ]; then rm -rf "$s/releases/$a" "$s/backups/$a" && echo "pruned $a"
  else docker image rm "$a" >/dev/null 2>&1 && echo "removed $a"; fi
done
cur=$(readlink "$s/current" 2>/dev/null) || cur=
for d in "$s"/releases/*; do
  [ -d "$d" ] || continue
  [ "releases/\${d##*/}" = "$cur" ] && continue
  [ -f "$d/release.json" ] || rm -rf "$d"
done
# a backup is kept exactly as long as its release
for d in "$s"/backups/*; do
  [ -d "$d" ] || continue
  [ -d "$s/releases/\${d##*/}" ] || rm -rf "$d"
done
[ -d "$s/run/$tok" ] || { echo "ERR the deploy's run folder is gone"; exit 70; }
touch "$s/run/$tok/done"
`

/** Appends stdin (one entry) to the journal, on a line of its own. args: state-dir */
export const APPEND_SCRIPT = `${JADD}
jadd "$1/ledger.jsonl"
`
