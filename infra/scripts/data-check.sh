# Sourced by stack.sh and compose.sh. PostgreSQL takes its password only when it initialises an
# empty data folder, so a database volume left by an earlier stack or Compose project keeps the
# password it was made with: next to new secret files, the gateway could never log in.

# The folder secrets.sh writes the secret files to.
secrets_dir() {
  echo "${VOTING_SECRETS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.secrets}"
}

# stale_data_line VOLUME LABEL REMOVE: the one line that says what is wrong and what to do. REMOVE
# is the command that drops the data of the owner LABEL names (key=value); a volume not carrying
# that label is not the owner's to remove, so then it is `docker volume rm`.
stale_data_line() {
  local volume=$1 label=$2 remove=$3
  if [ "$(docker volume inspect --format "{{index .Labels \"${label%%=*}\"}}" "$volume" 2>/dev/null)" != "${label#*=}" ]; then
    remove="docker volume rm $volume"
  fi
  echo "✖ the volume $volume holds a database made with another password: copy the secret files it was made with into $(secrets_dir), or remove the old data with $remove"
}

# check_stale_data VOLUME LABEL REMOVE: exits 1 with that line when the database volume VOLUME
# already exists but there is no password file yet, i.e. secrets.sh would make a new password
# that the data does not know. Run it before secrets.sh.
check_stale_data() {
  [ -s "$(secrets_dir)/postgres-password" ] && return 0
  docker volume inspect "$1" >/dev/null 2>&1 || return 0
  stale_data_line "$@" >&2
  exit 1
}
