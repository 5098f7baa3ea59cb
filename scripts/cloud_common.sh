# Sourced by the submit_*.sh helpers: `run CMD...` runs CMD, or with dry_run=1 prints it as one shell line
# (arguments that need it single-quoted), so the printed commands can be checked and pasted.
run() {
  if [ "${dry_run:-0}" = 1 ]; then
    local words=() arg
    for arg in "$@"; do
      if [[ $arg =~ ^[A-Za-z0-9_./:=,@+%-]+$ ]]; then words+=("$arg"); else words+=("${arg@Q}"); fi
    done
    echo "${words[*]}"
  else
    "$@"
  fi
}

# The spark-submit artifact: built by scripts/package.sh, or only named on a dry run.
artifact() {
  if [ "${dry_run:-0}" = 1 ]; then echo dist/visitseg.zip; else scripts/package.sh dist | tail -1; fi
}
