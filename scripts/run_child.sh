# Sourced by the launchers that run a long child (main.sh and eval.sh through run_layout.sh,
# demo.sh): run_child CMD... runs CMD as a child that this script's SIGTERM (a job's time limit,
# `kill`) reaches, waits for it, and returns CMD's exit status. Without it, SIGTERM ends bash and
# leaves CMD running on its own, still holding its run folder.
#
# SIGTERM is passed on (train.py takes it as Ctrl-C: stop after the step, keep what was done,
# exit 130). Ctrl-C in a terminal reaches CMD by itself (it is in the terminal's process group):
# the script only waits for CMD to finish stopping instead of ending at once; passing it on as
# well would be a second Ctrl-C, which aborts train.py without its last checkpoint.
run_child() {
    local child status
    # A script's background child would start with Ctrl-C ignored: give it back its default.
    ( trap - INT; exec "$@" ) &
    child=$!
    RUN_CHILD_SIGNALLED=
    trap 'RUN_CHILD_SIGNALLED=1; kill -TERM "${child}" 2>/dev/null || true' TERM
    trap 'RUN_CHILD_SIGNALLED=1' INT
    while :; do
        RUN_CHILD_SIGNALLED=
        status=0
        wait "${child}" || status=$?
        # A trapped signal ends `wait` early: wait again for the child's own exit status.
        [ -z "${RUN_CHILD_SIGNALLED}" ] && break
    done
    trap - TERM INT
    return "${status}"
}
